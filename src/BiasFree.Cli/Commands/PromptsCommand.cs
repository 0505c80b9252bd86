using System.CommandLine;
using BiasFree.Mitigations;

namespace BiasFree.Cli.Commands;

/// <summary><c>biasfree prompts</c>: print the prompting methods' templates as a prompts file, to edit and pass to <c>run --prompts</c>.</summary>
internal static class PromptsCommand
{
    public static Command Build()
    {
        var check = new Option<string?>("--check") { Description = "Validate this prompts file and print it with every template filled in (ours where the file has none)." };
        var cmd = new Command("prompts", "Print the prompting methods' templates (our default wording) as a prompts file for run --prompts.") { check };
        cmd.SetAction((pr, ct) => BiasFreeCli.Guard(() =>
        {
            var prompts = pr.GetValue(check) is { } file ? MethodPrompts.Load(file) : MethodPrompts.Default;
            Console.Out.Write(prompts.ToJson());
            return Task.FromResult(ExitCodes.Ok);
        }));
        return cmd;
    }
}
