namespace Tandem.Internal.Managed;

/// <summary>One registered managed twin (of a kernel or a state kind), by type; the catalog resolves and checks it.</summary>
internal sealed record ManagedTwinRegistration(Type Type);
