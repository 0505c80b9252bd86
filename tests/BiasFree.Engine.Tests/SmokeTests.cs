namespace BiasFree.Engine.Tests;

public class SmokeTests
{
    [Fact]
    public void Placeholder() => Assert.Equal(4, 2 + 2);
}
