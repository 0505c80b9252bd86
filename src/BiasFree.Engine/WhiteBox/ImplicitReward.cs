using BiasFree.Engine.Chat;
using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.WhiteBox;

/// <summary>A causal LM with the tokenizer and chat template to score text under it.</summary>
public sealed record ScoringModel(CausalLM Model, ITextTokenizer Tokenizer, IChatFormatter Formatter)
{
    /// <summary>Loads a Hugging Face model folder (float32, CPU).</summary>
    public static ScoringModel Load(string folder)
    {
        if (!LocalModel.IsModelFolder(folder))
            throw new DirectoryNotFoundException($"'{folder}' is not a Hugging Face model folder (needs config.json and tokenizer.json)");
        var tokenizer = HfTokenizer.FromFolder(folder);
        var template = ChatTemplate.For(tokenizer, null);
        return new ScoringModel(CausalLM.Load(folder), new HfTextTokenizer(tokenizer), new ChatTemplateFormatter(template));
    }

    /// <summary>log π(response | rendered conversation) for each response, in one batch.</summary>
    public IReadOnlyList<double> LogProbabilities(IReadOnlyList<ChatMessage> conversation, IReadOnlyList<string> responses)
    {
        var prompt = Tokenizer.Encode(Formatter.Render(conversation, addGenerationPrompt: true), false);
        if (prompt.Count == 0 && Tokenizer.BosId is int bos) prompt = [bos];
        var items = responses.Select(r => (Prompt: prompt, Continuation: Tokenizer.Encode(r, false))).ToList();
        var scored = new double[items.Count];
        // Empty continuations score 0 (log 1); the model needs at least one token to score.
        var nonEmpty = items.Select((it, i) => (it, i)).Where(x => x.it.Continuation.Count > 0).ToList();
        if (nonEmpty.Count > 0)
        {
            var results = Model.LogProbabilities(nonEmpty.Select(x => (x.it.Prompt, x.it.Continuation)).ToList());
            for (int k = 0; k < nonEmpty.Count; k++) scored[nonEmpty[k].i] = results[k].Sum;
        }
        return scored;
    }
}

/// <summary>
/// The DPO implicit reward (Rafailov et al., 2023, eq. 5, used as BiasFilter's fairness reward, arXiv 2505.23829):
/// r(x, y) = β · Σ_t [log π_fair(y_t | x, y_&lt;t) − log π_ref(y_t | x, y_&lt;t)] = β · (log π_fair(y | x) − log π_ref(y | x)),
/// where π_fair is the preference-tuned model and π_ref its reference. Each model scores the text with its own tokenizer
/// and chat template, so the two need not share a vocabulary (with a shared one the sum is exactly the per-token one).
/// </summary>
public sealed class ImplicitReward : IDisposable
{
    private readonly bool _owns;

    public ImplicitReward(ScoringModel fair, ScoringModel reference, double beta = 1.0, bool ownsModels = false)
    {
        if (!(beta > 0)) throw new ArgumentOutOfRangeException(nameof(beta), "β must be positive");
        Fair = fair;
        Reference = reference;
        Beta = beta;
        _owns = ownsModels;
    }

    public ScoringModel Fair { get; }
    public ScoringModel Reference { get; }
    public double Beta { get; }

    public static ImplicitReward Load(string fairFolder, string referenceFolder, double beta)
    {
        var fair = ScoringModel.Load(fairFolder);
        try
        {
            return new ImplicitReward(fair, ScoringModel.Load(referenceFolder), beta, ownsModels: true);
        }
        catch
        {
            fair.Model.Dispose();
            throw;
        }
    }

    /// <summary>r(x, y) for each response y to the conversation x.</summary>
    public IReadOnlyList<double> Score(IReadOnlyList<ChatMessage> conversation, IReadOnlyList<string> responses)
    {
        var fair = Fair.LogProbabilities(conversation, responses);
        var reference = ReferenceEquals(Fair, Reference) ? fair : Reference.LogProbabilities(conversation, responses);
        return fair.Zip(reference, (f, r) => Beta * (f - r)).ToList();
    }

    public void Dispose()
    {
        if (!_owns) return;
        Fair.Model.Dispose();
        Reference.Model.Dispose();
    }
}
