// TEMPORARY stand-in for the probes branch's SuiteRegistry (not merged into main yet). Deleted at merge time.
using BiasFree.Probes.BuiltIn;

namespace BiasFree.Probes;

internal static class SuiteRegistry
{
    public static IReadOnlyList<IProbeSuite> BuiltIns(int seed = 0) => [new BbqBuiltInSuite(seed), new FairMTBuiltInSuite(seed)];

    public static IProbeSuite Resolve(string spec, int seed = 0) => spec.Trim().ToLowerInvariant() switch
    {
        "bbq" or "bbq-builtin" => new BbqBuiltInSuite(seed),
        "fairmt" or "fairmt-builtin" => new FairMTBuiltInSuite(seed),
        _ => throw new ArgumentException($"unknown suite '{spec}': use bbq, fairmt or FORMAT:PATH."),
    };
}
