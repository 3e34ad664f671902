using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tandem.Server.Api;

/// <summary>
/// Rewrites System.Text.Json and parameter-binding messages in the API's
/// own words: they name .NET types (System.Single, the request record) that
/// mean nothing to a caller and are not the API's business to expose.
/// </summary>
internal static partial class ReadableErrors
{
    /// <summary>What was wrong with the JSON, without the reader's Path/LineNumber suffix or .NET type names.</summary>
    public static string Json(JsonException json)
    {
        var message = json.Message;
        if (UnmappedPattern().Match(message) is { Success: true } unmapped)
        {
            return $"the field '{unmapped.Groups[1].Value}' is not one this endpoint takes (the fields are in /openapi/v1.json)";
        }

        if (ConvertPattern().Match(message) is { Success: true } convert)
        {
            return $"the value is not {Expected(convert.Groups[1].Value)}";
        }

        // System.Text.Json appends "Path: ... | LineNumber: ..." which the detail already says in words.
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).Replace(" Change the reader options.", string.Empty, StringComparison.Ordinal);
    }

    /// <summary>A failed route or query parameter binding, as "parameter 'x' must be ..., got 'y'"; null when the message is not one.</summary>
    public static string? Binding(string message) =>
        BindPattern().Match(message) is { Success: true } bind
            ? $"parameter '{bind.Groups[2].Value}' must be {Expected(bind.Groups[1].Value.Replace("Nullable<", string.Empty, StringComparison.Ordinal).TrimEnd('>'))}, got '{bind.Groups[3].Value}'"
            : null;

    private static string Expected(string type) => NullablePattern().Match(type) is { Success: true } nullable ? Expected(nullable.Groups[1].Value) : type switch
    {
        _ when type.EndsWith("[]", StringComparison.Ordinal) || type.EndsWith("[][]", StringComparison.Ordinal) => "an array of the right element type",
        "System.Single" or "System.Double" or "float" or "double" => "a number",
        "System.Int32" or "System.Int64" or "System.UInt64" or "int" or "long" or "ulong" => "an integer in range",
        "System.Boolean" or "bool" => "true or false",
        "System.String" or "string" => "a string",
        _ => "of the expected type (see /openapi/v1.json)",
    };

    [GeneratedRegex(@"^System\.Nullable`1\[(.+)\]$")]
    private static partial Regex NullablePattern();

    [GeneratedRegex("^The JSON property '([^']*)' could not be mapped")]
    private static partial Regex UnmappedPattern();

    [GeneratedRegex("^The JSON value could not be converted to ([^ .]+(?:\\.[^ .]+)*)\\.")]
    private static partial Regex ConvertPattern();

    [GeneratedRegex("^Failed to bind parameter \"(\\S+) (\\S+)\" from \"(.*)\"\\.$")]
    private static partial Regex BindPattern();
}
