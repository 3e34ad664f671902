using System.Reflection;
using Xunit.Sdk;

namespace Tandem.Testing.Internal;

/// <summary>
/// The data of the kit's theories: one row per backend the derived test
/// class lists in <see cref="KernelBackendsAttribute"/>. xunit hands the
/// method as reflected from the derived class, so its attribute is found
/// although the theory is declared on the base.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
internal sealed class BackendDataAttribute : DataAttribute
{
    public static readonly BackendKind[] Default = [BackendKind.Native, BackendKind.Remote];

    public override IEnumerable<object[]> GetData(MethodInfo testMethod)
    {
        var testClass = testMethod.ReflectedType ?? testMethod.DeclaringType!;
        var backends = testClass.GetCustomAttribute<KernelBackendsAttribute>(inherit: true)?.Backends ?? Default;
        if (backends.Count == 0 || backends.Contains(BackendKind.Managed))
        {
            throw new ArgumentException($"[KernelBackends] on {testClass.Name} must list Native, Remote or both (Managed is the reference every backend is compared with)");
        }

        return backends.Distinct().Select(backend => new object[] { backend });
    }
}
