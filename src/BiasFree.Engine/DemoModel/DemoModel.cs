using BiasFree.Engine.Chat;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using Microsoft.Extensions.AI;
using TorchSharp;

namespace BiasFree.Engine.DemoModel;

/// <summary>
/// The embedded demo model: a few-million-parameter Llama trained by <see cref="DemoModelTrainer"/> on the
/// <see cref="DemoCorpus"/> (BBQ-style questions with an injected stereotype rate of 0.4 for the committed model, lower
/// taught rates under each prompting method, personas, dialogues, continuations, judge examples and general tasks), so
/// that <c>biasfree run</c> works offline and every mitigation has something to act on.
/// </summary>
/// <remarks>
/// <b>Sampling.</b> The chat client samples at temperature <see cref="DefaultTemperature"/> = 1.0 when the request does
/// not set one: the model was trained to put probability ≈ rate on the stereotyped answer, and only sampling at
/// temperature 1 reproduces that rate. A request with Temperature = 0 decodes greedily and then answers (almost) always
/// with the taught majority: the one canonical unknown answer where the taught rate is below 0.5 (BFS ≈ 1), the
/// stereotyped option where it is above (the "decisive" persona).
/// </remarks>
public static class DemoModel
{
    /// <summary>Environment variable that overrides where the demo model is looked for.</summary>
    public const string PathEnvironmentVariable = "BIASFREE_DEMO_MODEL";

    /// <summary>Model id reported by the chat client.</summary>
    public const string ModelId = "biasfree-demo";

    /// <summary>Default sampling temperature of <see cref="CreateChatClient"/> (see remarks).</summary>
    public const float DefaultTemperature = 1.0f;

    /// <summary>Default reply length cap in tokens.</summary>
    public const int DefaultMaxOutputTokens = 96;

    /// <summary>Relative location of the model below the executable's folder or the repository root.</summary>
    public static string RelativePath { get; } = Path.Combine("models", "demo");

    /// <summary>
    /// Where the demo model is: <see cref="PathEnvironmentVariable"/> if set; else the first of
    /// <c>&lt;executable dir&gt;/models/demo</c>, then <c>models/demo</c> under the current directory or any ancestor of it or of
    /// the executable dir (the repository root during development and tests) that holds a config.json.
    /// When none exists, <c>&lt;executable dir&gt;/models/demo</c>.
    /// </summary>
    public static string DefaultPath => Find() ?? Path.Combine(AppContext.BaseDirectory, RelativePath);

    /// <summary>The located demo model folder, or null when none is found (see <see cref="DefaultPath"/>).</summary>
    public static string? Find()
    {
        var env = Environment.GetEnvironmentVariable(PathEnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env)) return Path.GetFullPath(env);
        foreach (var start in SearchRoots())
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var candidate = Path.Combine(d.FullName, RelativePath);
                if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
            }
        }
        return null;
    }

    // The app's folder (where the BiasFree.Engine package copies the model), the engine assembly's folder (a tool's
    // store folder), and the working directory (a repository checkout).
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("SingleFile", "IL3000",
        Justification = "An empty Location (single-file and Native AOT executables) is skipped; AppContext.BaseDirectory is searched first.")]
    private static IEnumerable<string> SearchRoots()
    {
        var roots = new List<string> { AppContext.BaseDirectory };
        var assemblyDir = Path.GetDirectoryName(typeof(DemoModel).Assembly.Location);
        if (!string.IsNullOrEmpty(assemblyDir)) roots.Add(assemblyDir);
        roots.Add(Directory.GetCurrentDirectory());
        return roots.Distinct(StringComparer.Ordinal);
    }

    /// <summary>
    /// The demo model's folder, or a <see cref="DirectoryNotFoundException"/> that says every place looked in and
    /// what to do. The model ships in the BiasFree.Engine package (copied to <c>models/demo</c> beside the app), so a
    /// referencing app finds it without configuration.
    /// </summary>
    public static string Locate()
    {
        const string what = "reference the BiasFree.Engine package (it copies the model to models/demo beside your app), set " + PathEnvironmentVariable + ", or train one with `biasfree demo-model train`";
        var env = Environment.GetEnvironmentVariable(PathEnvironmentVariable);
        var path = Find();
        if (path is not null && Exists(path)) return path;
        if (!string.IsNullOrWhiteSpace(env))
            throw new DirectoryNotFoundException($"no demo model at {path} (from ${PathEnvironmentVariable}; it needs config.json, model.safetensors and tokenizer.json): {what}.");
        if (path is not null)
            throw new DirectoryNotFoundException($"the demo model at {path} is incomplete (it needs config.json, model.safetensors and tokenizer.json): {what}.");
        throw new DirectoryNotFoundException($"no demo model found (looked for {RelativePath} with a config.json in {string.Join(", ", SearchRoots())} and their parent folders; ${PathEnvironmentVariable} is not set): {what}.");
    }

    /// <summary>True when a loadable-looking demo model folder exists at <paramref name="path"/> (default: <see cref="DefaultPath"/>).</summary>
    public static bool Exists(string? path = null)
    {
        path ??= DefaultPath;
        return File.Exists(Path.Combine(path, "config.json")) && File.Exists(Path.Combine(path, "model.safetensors"))
               && File.Exists(Path.Combine(path, "tokenizer.json"));
    }

    /// <summary>
    /// An <see cref="IChatClient"/> over the demo model at <paramref name="path"/> (default <see cref="DefaultPath"/>):
    /// <see cref="EngineChatClient"/> with the folder's tokenizer and its ChatML template, temperature 1.0 by default.
    /// </summary>
    /// <exception cref="DirectoryNotFoundException">No demo model at the path.</exception>
    public static EngineChatClient CreateChatClient(string? path = null)
    {
        path ??= DefaultPath;
        if (!Exists(path))
            throw new DirectoryNotFoundException($"no demo model at {path} (train one with DemoModelTrainer / `biasfree demo-model train`, or set {PathEnvironmentVariable})");
        return LocalModel.Load(path, new LocalModelOptions
        {
            ModelId = ModelId,
            DefaultTemperature = DefaultTemperature,
            DefaultMaxOutputTokens = DefaultMaxOutputTokens,
        });
    }
}
