using Tandem.Perf.Cli;
using Tandem.Perf.Load;

namespace Tandem.Perf.Tests;

public sealed class InputFileTests
{
    [Fact]
    public void Parse_CommentsAndBlankLines_Skipped()
    {
        var intervals = IntervalsFile.Parse(new StringReader("# captured 2026-12-01\n1000\n\n  250.5 \n0\n"), "trace.txt");

        Assert.Equal([1000, 250.5, 0], intervals);
    }

    [Theory]
    [InlineData("100\nabc\n", "trace.txt line 2: 'abc' is not a number of microseconds")]
    [InlineData("100\n\n-3\n", "trace.txt line 3: -3 µs is outside 0 to")]
    [InlineData("# nothing\n\n", "trace.txt holds no interval")]
    [InlineData("0\n0\n", "every interval in trace.txt is 0")]
    [InlineData("1e400\n", "trace.txt line 1: '1e400' is not a number")]
    public void Parse_BadFile_NamesTheLine(string text, string expected)
    {
        var e = Assert.Throws<UsageException>(() => IntervalsFile.Parse(new StringReader(text), "trace.txt"));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_MissingFile_SaysSo()
    {
        var e = Assert.Throws<UsageException>(() => IntervalsFile.Read("/nonexistent/intervals.txt"));

        Assert.Contains("'/nonexistent/intervals.txt' does not exist", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("1:64:x2", new[] { 1.0, 2, 4, 8, 16, 32, 64 })]
    [InlineData("1:48:x4", new[] { 1.0, 4, 16, 48 })]
    [InlineData("1:10:3", new[] { 1.0, 4, 7, 10 })]
    [InlineData("8", new[] { 8.0 })]
    [InlineData("2:4", new[] { 2.0, 3, 4 })]
    public void StepRange_Parse_ExpandsWithTheEndIncluded(string text, double[] expected)
    {
        Assert.Equal(expected, StepRange.Parse("--concurrency", text, min: 1, integers: true));
    }

    [Theory]
    [InlineData("0:4", "below the minimum 1")]
    [InlineData("4:2", "the end 2 is below the start 4")]
    [InlineData("1:8:x1", "must be above 1")]
    [InlineData("1.5", "not a whole number")]
    [InlineData("1:2:3:4", "use START")]
    [InlineData("a:4", "'a' is not a number")]
    [InlineData("1:1000", "more than 64 steps")]
    public void StepRange_Bad_Explains(string text, string expected)
    {
        var e = Assert.Throws<UsageException>(() => StepRange.Parse("--concurrency", text, min: 1, integers: true));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ValueRange_PerColumn_WholeNumbersStayWhole()
    {
        var ranges = ValueRange.ParseList("options", "90:110,0:1:int");
        var random = new Random(1);

        for (var i = 0; i < 100; i++)
        {
            Assert.InRange(ranges[0].Draw(random), 90, 110);
            Assert.Contains(ranges[1].Draw(random), new[] { 0.0, 1.0 });
        }
    }

    [Theory]
    [InlineData("5:1", "HIGH 1 is below LOW 5")]
    [InlineData("1", "use LOW:HIGH")]
    [InlineData("0.2:0.8:int", "no whole number")]
    [InlineData("x:1", "'x' is not a number")]
    public void ValueRange_Bad_Explains(string text, string expected)
    {
        var e = Assert.Throws<UsageException>(() => ValueRange.ParseList("options", text));

        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
