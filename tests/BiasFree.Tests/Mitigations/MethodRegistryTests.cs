using BiasFree.Methods;
using BiasFree.Tests.Infrastructure;
using Microsoft.Extensions.AI;

namespace BiasFree.Tests.Mitigations;

/// <summary>Named methods as ChatClientBuilder steps, and their combinations.</summary>
public class MethodRegistryTests
{
    private sealed class Tag(IChatClient inner, string tag) : DelegatingChatClient(inner)
    {
        public override Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            base.GetResponseAsync([.. messages, new ChatMessage(ChatRole.User, tag)], options, cancellationToken);
    }

    [Fact]
    public async Task CombinedMethodsWrapFromTheOutsideInInTheOrderWritten()
    {
        var registry = new MethodRegistry(MethodRegistry.Prompting)
            .Add(new MethodDefinition("outer", "test", b => b.Use(inner => new Tag(inner, "outer"))))
            .Add(new MethodDefinition("inner", "test", b => b.Use(inner => new Tag(inner, "inner"))));
        using var target = new ScriptedChatClient("ok");

        Assert.Equal("outer+inner", registry.Normalize(" Outer + INNER "));
        await registry.Apply(target, "outer+inner").GetResponseAsync([new ChatMessage(ChatRole.User, "q")], cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(["q", "outer", "inner"], target.Calls.Single().Messages.Select(m => m.Text));
        Assert.Same(target, registry.Apply(target, "none"));
    }

    [Fact]
    public void BadNamesAreRefusedWithTheKnownNames()
    {
        var r = MethodRegistry.Prompting;
        Assert.Equal(["none", "self-awareness", "self-reflection", "self-help", "cot"], r.Names);
        Assert.Equal("self-awareness+cot", r.Normalize("self-awareness+cot"));
        Assert.Contains("available: none, self-awareness", Assert.Throws<ArgumentException>(() => r.Normalize("fairsteer")).Message, StringComparison.Ordinal);
        Assert.Contains("cannot be combined", Assert.Throws<ArgumentException>(() => r.Normalize("none+cot")).Message, StringComparison.Ordinal);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => r.Normalize("cot+cot")).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => r.Add(new MethodDefinition("x", "x", _ => { })));
        Assert.Throws<ArgumentException>(() => new MethodRegistry().Add(new MethodDefinition("a+b", "x", _ => { })));
    }
}
