namespace BiasFree.Probes;

/// <summary>
/// A suite file is malformed. The message always names the file, the 1-based line and the field, e.g.
/// <c>data/Age.jsonl:17: field 'label': expected integer 0..2</c>.
/// </summary>
public sealed class ProbeFormatException : Exception
{
    public ProbeFormatException(string file, int line, string? field, string problem, Exception? inner = null)
        : base(Describe(file, line, field, problem), inner)
    {
        File = file;
        Line = line;
        Field = field;
        Problem = problem;
    }

    /// <summary>The file as given by the caller (path, not normalised).</summary>
    public string File { get; }

    /// <summary>1-based line number; 0 when the problem concerns the whole file (e.g. it is empty).</summary>
    public int Line { get; }

    /// <summary>The offending field (dotted for nested ones, e.g. "answer_info.ans1"), or null.</summary>
    public string? Field { get; }

    /// <summary>What is wrong, without the location prefix.</summary>
    public string Problem { get; }

    private static string Describe(string file, int line, string? field, string problem)
    {
        var where = line > 0 ? $"{file}:{line}" : file;
        return field is null ? $"{where}: {problem}" : $"{where}: field '{field}': {problem}";
    }
}
