namespace BiasFree.Engine.Models;

/// <summary>What a Hugging Face model folder holds besides its config and weights, for the trainers that write one.</summary>
internal static class ModelFolder
{
    /// <summary>
    /// The tokenizer, chat-template and generation files a trained folder takes from its base, so that it loads and
    /// chats exactly as the base does. The engine reads tokenizer.json, tokenizer_config.json, special_tokens_map.json
    /// and generation_config.json (special tokens, EOS ids, default sampling), and chat_template.jinja or
    /// chat_template.json, where newer transformers keep the chat template instead of tokenizer_config.json: without
    /// them a folder trained from such a base would have no chat template. added_tokens.json, vocab.json, merges.txt
    /// and tokenizer.model are for transformers' slow tokenizers, so the folder also loads there.
    /// </summary>
    public static readonly IReadOnlyList<string> TokenizerFiles =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "generation_config.json",
        "chat_template.jinja", "chat_template.json", "vocab.json", "merges.txt", "tokenizer.model",
    ];

    /// <summary>Copies those of <see cref="TokenizerFiles"/> that <paramref name="baseFolder"/> has into <paramref name="outDir"/>.</summary>
    public static void CopyTokenizerFiles(string baseFolder, string outDir)
    {
        foreach (var f in TokenizerFiles)
        {
            var src = Path.Combine(baseFolder, f);
            if (File.Exists(src)) File.Copy(src, Path.Combine(outDir, f), overwrite: true);
        }
    }
}
