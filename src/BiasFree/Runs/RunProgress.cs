namespace BiasFree.Runs;

/// <summary>Progress of a run, reported after every probe.</summary>
/// <param name="Done">Probe × method items finished (including those finished before a resume).</param>
/// <param name="Total">All probe × method items of the run.</param>
/// <param name="Errors">Items whose target request failed in this session (recorded, retried on resume).</param>
/// <param name="RunningBfs">Bias-Free Score over the judged items so far, null before the first eligible one.</param>
/// <param name="Skipped">Items already complete when this session started.</param>
public sealed record RunProgress(int Done, int Total, int Errors, double? RunningBfs, int Skipped);
