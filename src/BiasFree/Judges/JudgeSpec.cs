using BiasFree.Judges.Defences;
using BiasFree.Targets;

namespace BiasFree.Judges;

/// <summary>The kinds of judge a <see cref="JudgeSpec"/> can name.</summary>
public enum JudgeKind
{
    /// <summary><see cref="LlmDialogueJudge"/>: JSON label + reason.</summary>
    Llm,

    /// <summary><see cref="BiasGuardJudge"/>: specification-guided reasoning, reasoned-verdict format.</summary>
    BiasGuard,

    /// <summary><see cref="LlamaGuardJudge"/>: safe/unsafe classifier.</summary>
    LlamaGuard,

    /// <summary><see cref="ModerationJudge"/>: /v1/moderations endpoint.</summary>
    Moderation,

    /// <summary>The embedded demo model as an offline judge (built by the host that has the engine).</summary>
    Demo,
}

/// <summary>
/// One judge named on the command line: <c>KIND:MODEL@URL</c>, <c>KIND@URL</c> (model from <c>--judge-model</c>),
/// a bare URL (an <see cref="JudgeKind.Llm"/> judge) or <c>demo</c>. KIND is <c>llm</c>, <c>biasguard</c>,
/// <c>llama-guard</c>, <c>moderation</c> or <c>demo</c>. A list is comma-separated: <c>--judge A,B,C</c> makes a
/// <see cref="MajorityJudge"/>.
/// </summary>
/// <param name="Kind">Judge kind.</param>
/// <param name="Model">Model name, or null to take the default.</param>
/// <param name="Endpoint">Base URL (null for <see cref="JudgeKind.Demo"/>).</param>
public sealed record JudgeSpec(JudgeKind Kind, string? Model, Uri? Endpoint)
{
    /// <summary>Marks the content hash at the end of a <c>demo:PATH</c> spec.</summary>
    public const string HashMarker = "#sha256:";

    /// <summary>
    /// For <c>demo:PATH</c>: the content hash of the model or adapter folder when the spec was pinned (a run records
    /// <c>demo:/absolute/path#sha256:HEX</c>, so a resume from any working directory finds the same folder and refuses
    /// one whose weights changed). Null when not pinned.
    /// </summary>
    public string? ContentHash { get; init; }

    /// <summary>The spec written back in the syntax <see cref="Parse"/> reads (stored with runs).</summary>
    public string Canonical => Kind switch
    {
        JudgeKind.Demo => Model is null ? "demo" : ContentHash is null ? $"demo:{Model}" : $"demo:{Model}{HashMarker}{ContentHash}",
        _ => $"{KindName(Kind)}{(Model is null ? "" : ":" + Model)}@{Endpoint}",
    };

    private static string KindName(JudgeKind kind) => kind switch
    {
        JudgeKind.Llm => "llm",
        JudgeKind.BiasGuard => "biasguard",
        JudgeKind.LlamaGuard => "llama-guard",
        JudgeKind.Moderation => "moderation",
        _ => "demo",
    };

    /// <summary>Parses one spec.</summary>
    /// <exception cref="ArgumentException">Unknown kind, missing or non-http(s) URL, or a URL with user info or a query.</exception>
    public static JudgeSpec Parse(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        var s = text.Trim();
        if (s.Equals("demo", StringComparison.OrdinalIgnoreCase)) return new(JudgeKind.Demo, null, null);
        if (s.StartsWith("demo:", StringComparison.OrdinalIgnoreCase))
        {
            // A path may hold '@' or ':', so a demo spec is not split like KIND:MODEL@URL; a pinned one ends in #sha256:HEX.
            var path = s[5..].Trim();
            string? hash = null;
            int h = path.LastIndexOf(HashMarker, StringComparison.Ordinal);
            if (h >= 0)
            {
                hash = path[(h + HashMarker.Length)..].Trim();
                path = path[..h].Trim();
                if (hash.Length == 0 || !hash.All(char.IsAsciiHexDigitLower))
                    throw new ArgumentException($"judge '{text}': '{hash}' after {HashMarker} is not a lower-case hex hash");
            }
            return new(JudgeKind.Demo, path.Length == 0 ? null : path, null) { ContentHash = path.Length == 0 ? null : hash };
        }
        if (s.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || s.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            return new(JudgeKind.Llm, null, Url(s, text));
        int at = s.LastIndexOf('@');
        var head = at < 0 ? s : s[..at];
        int colon = head.IndexOf(':', StringComparison.Ordinal);
        var kindText = colon < 0 ? head : head[..colon];
        var model = colon < 0 ? null : head[(colon + 1)..].Trim();
        var kind = kindText.Trim().ToLowerInvariant() switch
        {
            "llm" => JudgeKind.Llm,
            "biasguard" => JudgeKind.BiasGuard,
            "llama-guard" or "llamaguard" => JudgeKind.LlamaGuard,
            "moderation" => JudgeKind.Moderation,
            "demo" => JudgeKind.Demo,
            _ => throw new ArgumentException($"judge '{text}': unknown kind '{kindText}' (use llm, biasguard, llama-guard, moderation, demo, or a URL)"),
        };
        if (kind == JudgeKind.Demo) return new(kind, string.IsNullOrWhiteSpace(model) ? null : model, null);
        if (at < 0) throw new ArgumentException($"judge '{text}': expected {kindText}:MODEL@URL or {kindText}@URL");
        return new(kind, string.IsNullOrWhiteSpace(model) ? null : model, Url(s[(at + 1)..].Trim(), text));
    }

    /// <summary>Parses a comma-separated list.</summary>
    public static IReadOnlyList<JudgeSpec> ParseList(string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(text);
        return [.. text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Parse)];
    }

    private static Uri Url(string url, string spec)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new ArgumentException($"judge '{spec}': '{url}' is not an http(s) URL");
        if (uri.UserInfo.Length > 0 || uri.Query.Length > 0)
            throw new ArgumentException($"judge '{spec}': the URL must not contain user info or a query string (put the key in the environment variable named by --api-key-env)");
        return uri;
    }
}

/// <summary>Settings shared by the judges <see cref="JudgeFactory"/> builds.</summary>
public sealed record JudgeFactoryOptions
{
    /// <summary>Model for specs that name none.</summary>
    public string? DefaultModel { get; init; }

    /// <summary>Environment variable holding the API key.</summary>
    public string? ApiKeyEnvironmentVariable { get; init; } = "OPENAI_API_KEY";

    /// <summary>HTTP timeout per call.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Retries of transient HTTP failures.</summary>
    public int Retries { get; init; } = 4;

    /// <summary>Fairness specification of BiasGuard judges (default <see cref="FairnessSpecification.Default"/>).</summary>
    public FairnessSpecification? Specification { get; init; }

    /// <summary>Tie rule of the majority.</summary>
    public TieRule TieRule { get; init; } = TieRule.Biased;

    /// <summary>Prompt-injection defences of every judge built (default all; <see cref="JudgeDefences.None"/> measures raw judges).</summary>
    public JudgeDefences Defences { get; init; } = JudgeDefences.All;

    /// <summary>Builds <see cref="JudgeKind.Demo"/> judges with the given defences (the host with the engine supplies it).</summary>
    public Func<JudgeSpec, JudgeDefences, IJudge>? Demo { get; init; }
}

/// <summary>Builds judges from <see cref="JudgeSpec"/>s; owns (and disposes) the HTTP clients it creates.</summary>
public sealed class JudgeFactory : IDisposable
{
    private readonly JudgeFactoryOptions _options;
    private readonly List<IDisposable> _owned = [];

    /// <param name="options">Shared settings.</param>
    public JudgeFactory(JudgeFactoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
    }

    /// <summary>One judge for one spec, a <see cref="MajorityJudge"/> for several.</summary>
    public IJudge Create(IReadOnlyList<JudgeSpec> specs)
    {
        ArgumentNullException.ThrowIfNull(specs);
        if (specs.Count == 0) throw new ArgumentException("no judge given", nameof(specs));
        return specs.Count == 1 ? Create(specs[0]) : new MajorityJudge([.. specs.Select(Create)], _options.TieRule);
    }

    /// <summary>The judge of one spec.</summary>
    public IJudge Create(JudgeSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Kind == JudgeKind.Demo)
            return (_options.Demo ?? throw new ArgumentException("the demo judge is not available here"))(spec, _options.Defences);
        var model = spec.Model ?? _options.DefaultModel
            ?? throw new ArgumentException($"judge {spec.Kind.ToString().ToLowerInvariant()}@{spec.Endpoint}: no model (write KIND:MODEL@URL or pass --judge-model)");
        if (spec.Kind == JudgeKind.Moderation)
        {
            var m = new ModerationJudge(spec.Endpoint!, model, _options.ApiKeyEnvironmentVariable, timeout: _options.Timeout, defences: _options.Defences);
            _owned.Add(m);
            return m;
        }
        var client = OpenAICompatibleTarget.Create(new OpenAICompatibleTargetOptions
        {
            Endpoint = spec.Endpoint!,
            Model = model,
            ApiKeyEnvironmentVariable = _options.ApiKeyEnvironmentVariable,
            Timeout = _options.Timeout,
            MaxRetries = _options.Retries,
        });
        _owned.Add(client);
        return spec.Kind switch
        {
            JudgeKind.Llm => new LlmDialogueJudge(client, timeout: _options.Timeout, defences: _options.Defences),
            JudgeKind.BiasGuard => new BiasGuardJudge(client, _options.Specification, timeout: _options.Timeout, defences: _options.Defences),
            _ => new LlamaGuardJudge(client, timeout: _options.Timeout, defences: _options.Defences),
        };
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _owned.Clear();
    }
}
