using BiasFree.Engine.Models;
using BiasFree.Engine.Tokenization;
using BiasFree.Probes;
using Microsoft.Extensions.AI;

namespace BiasFree.Engine.Decoding.Ivo;

/// <summary>
/// The policy IVO samples from, loaded the one way value training and the per-round evaluation both need it: model in
/// eval mode, its tokenizer and chat template, the stop tokens (the model's EOS plus the template's end-of-turn token),
/// the padding id, and the rendered prompt of each multiple-choice probe. Sharing it keeps the training rollouts and the
/// held-out evaluation on the same prompts and stopping rule.
/// </summary>
internal sealed class IvoPolicy : IDisposable
{
    private readonly ChatTemplate _template;

    public HfTokenizer Tokenizer { get; }
    public CausalLM Model { get; }
    public List<int> Eos { get; }
    public int Pad { get; }

    private IvoPolicy(string folder)
    {
        Tokenizer = HfTokenizer.FromFolder(folder);
        _template = ChatTemplate.For(Tokenizer, null);
        Model = CausalLM.Load(folder);
        Model.eval();
        Eos = Model.EosTokenIds.ToList();
        if (_template.EosToken is { } e && Tokenizer.TokenToId(e) is int endOfTurn && !Eos.Contains(endOfTurn)) Eos.Add(endOfTurn);
        Pad = Model.Config.PadTokenId ?? Eos.FirstOrDefault();
    }

    public static IvoPolicy Load(string folder) => new(folder);

    /// <summary>Each probe's first user turn under <paramref name="systemPrompt"/>, rendered for generation and encoded
    /// (a prompt that encodes to nothing becomes the BOS token).</summary>
    public List<int[]> Prompts(IEnumerable<Probe> items, string systemPrompt) => items.Select(p =>
    {
        var text = _template.Render([new ChatMessage(ChatRole.System, systemPrompt), new ChatMessage(ChatRole.User, p.UserTurns[0])], addGenerationPrompt: true);
        var ids = Tokenizer.Encode(text, false).ToArray();
        return ids.Length == 0 && Tokenizer.BosId is int bos ? [bos] : ids;
    }).ToList();

    public void Dispose() => Model.Dispose();
}
