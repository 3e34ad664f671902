using Microsoft.Playwright;

namespace Tandem.Server.Tests.Browser;

/// <summary>
/// Debian's Chromium (package <c>chromium</c>) driven by the Playwright
/// driver bundled in the NuGet package, in a fresh profile that is deleted on
/// dispose. Never downloads a browser: the executable is the system one.
/// </summary>
internal sealed class DebianChromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    // Headless, no sandbox (containers), and nothing that phones home, so the
    // run works offline.
    private static readonly string[] Args =
    [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ];

    private readonly IPlaywright _playwright;
    private bool _disposed;

    private DebianChromium(IPlaywright playwright, IBrowserContext context, string profileDirectory)
    {
        _playwright = playwright;
        Context = context;
        ProfileDirectory = profileDirectory;
    }

    public IBrowserContext Context { get; }

    /// <summary>The fresh profile (Chromium's user-data-dir), deleted on dispose.</summary>
    public string ProfileDirectory { get; }

    public static async Task<DebianChromium> LaunchAsync()
    {
        if (!File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException($"{ExecutablePath} is missing; install Debian's 'chromium' package (the test never downloads a browser)");
        }

        var profile = Directory.CreateTempSubdirectory("tandem-chromium-").FullName;
        IPlaywright? playwright = null;
        try
        {
            playwright = await Playwright.CreateAsync();
            var context = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
            {
                ExecutablePath = ExecutablePath,
                Headless = true,
                Args = Args,
                ViewportSize = new ViewportSize { Width = 1440, Height = 900 },
            });
            return new DebianChromium(playwright, context, profile);
        }
        catch
        {
            playwright?.Dispose();
            Directory.Delete(profile, recursive: true);
            throw;
        }
    }

    /// <summary>The page the persistent context opened with.</summary>
    public async Task<IPage> PageAsync() =>
        Context.Pages.Count > 0 ? Context.Pages[0] : await Context.NewPageAsync();

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        try
        {
            // Waits for the browser process to exit, so the profile is no longer in use.
            await Context.CloseAsync();
        }
        finally
        {
            _playwright.Dispose();
            Directory.Delete(ProfileDirectory, recursive: true);
        }
    }
}
