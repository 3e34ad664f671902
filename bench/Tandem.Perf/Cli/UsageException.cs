namespace Tandem.Perf.Cli;

/// <summary>Bad command-line input or a bad input file: the message says what to fix; the tool exits with code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
