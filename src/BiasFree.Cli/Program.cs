// Placeholder entry point; the real CLI is built in src/BiasFree.Cli/Commands.
return 0;
