// The harness benchmark's client (HarnessBench.ClientAsync), alone: `HarnessAotClient --client --target URL --suite PATH
// --runs-dir DIR --run-id ID --in-flight N`, the arguments and output of `BiasFree.Bench harness --client`.
return await HarnessBench.ClientAsync(args).ConfigureAwait(false);
