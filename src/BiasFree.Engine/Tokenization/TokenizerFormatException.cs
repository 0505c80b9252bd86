namespace BiasFree.Engine.Tokenization;

/// <summary>A tokenizer file is malformed or uses a feature we do not support.</summary>
public sealed class TokenizerFormatException : Exception
{
    public TokenizerFormatException(string filePath, string jsonPath, string problem, Exception? inner = null)
        : base($"{filePath}: {jsonPath}: {problem}", inner)
    {
        FilePath = filePath;
        JsonPath = jsonPath;
        Problem = problem;
    }

    /// <summary>The file that was being read.</summary>
    public string FilePath { get; }

    /// <summary>Where in the file, as a JSON path such as <c>$.model.type</c>.</summary>
    public string JsonPath { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }
}
