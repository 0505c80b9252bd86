using BiasFree.Cli;

return await BiasFreeCli.InvokeAsync(args).ConfigureAwait(false);
