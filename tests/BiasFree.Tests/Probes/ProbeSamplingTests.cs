namespace BiasFree.Tests.Probes;

using BiasFree.Probes;

/// <summary>Seeded stratified samples for probe limits.</summary>
public class ProbeSamplingTests
{
    private static IReadOnlyList<Probe> Bbq() => SuiteRegistry.Resolve("bbq", 0).Load();

    [Fact]
    public void EveryStratumGetsItsProportionalShareInSuiteOrder()
    {
        var all = Bbq();
        var strata = all.GroupBy(p => (p.Category, p.Context)).ToDictionary(g => g.Key, g => g.Count());
        var limit = strata.Count * 3 + 5;
        var sample = ProbeSampling.Stratified(all, limit, seed: 1);

        Assert.Equal(limit, sample.Count);
        Assert.Equal(limit, sample.Distinct().Count());
        foreach (var (key, n) in strata)
        {
            var expected = (double)limit * n / all.Count;
            var got = sample.Count(p => (p.Category, p.Context) == key);
            Assert.InRange(got, Math.Floor(expected), Math.Ceiling(expected)); // largest remainder: floor or floor + 1
        }
        var positions = sample.Select(p => all.ToList().IndexOf(p)).ToList();
        Assert.Equal(positions.Order(), positions); // kept in the suite's order
    }

    [Fact]
    public void TheSampleDependsOnTheSeedOnly()
    {
        var all = Bbq();
        var a = ProbeSampling.Stratified(all, 40, seed: 7).Select(p => p.Id).ToList();
        var reversed = ProbeSampling.Stratified([.. all.Reverse()], 40, seed: 7).Select(p => p.Id).Order().ToList();
        Assert.Equal(a, ProbeSampling.Stratified(all, 40, seed: 7).Select(p => p.Id));
        Assert.Equal(a.Order(), reversed); // the same probes whatever order the suite was read in
        Assert.NotEqual(a, ProbeSampling.Stratified(all, 40, seed: 8).Select(p => p.Id));
        Assert.Same(all, ProbeSampling.Stratified(all, all.Count, seed: 7));
    }

    [Fact]
    public void ALimitBelowTheCategoryCountStillSpreadsOverCategories()
    {
        var all = Bbq();
        var categories = all.Select(p => p.Category).Distinct().Count();
        Assert.True(categories >= 5);
        var sample = ProbeSampling.Stratified(all, categories, seed: 0);
        Assert.True(sample.Select(p => p.Category).Distinct().Count() >= categories / 2, "a bare Take(n) would give one category");
        var tiny = Enumerable.Range(0, 6).Select(seed => string.Join(",", ProbeSampling.Stratified(all, 2, seed).Select(p => p.Category))).Distinct().Count();
        Assert.True(tiny > 1, "with fewer probes than strata, the seed decides which strata are drawn");
    }
}
