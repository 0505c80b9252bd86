using TorchSharp;

namespace BiasFree.Engine.Safetensors;

/// <summary>Maps safetensors dtype strings ("F32", "BF16", ...) to TorchSharp scalar types and element sizes.</summary>
public static class SafetensorsDType
{
    private static readonly (string Name, torch.ScalarType Type, int Size)[] Table =
    [
        ("F64", torch.ScalarType.Float64, 8),
        ("F32", torch.ScalarType.Float32, 4),
        ("F16", torch.ScalarType.Float16, 2),
        ("BF16", torch.ScalarType.BFloat16, 2),
        ("I64", torch.ScalarType.Int64, 8),
        ("I32", torch.ScalarType.Int32, 4),
        ("I16", torch.ScalarType.Int16, 2),
        ("I8", torch.ScalarType.Int8, 1),
        ("U8", torch.ScalarType.Byte, 1),
        ("BOOL", torch.ScalarType.Bool, 1),
    ];

    /// <summary>The scalar type for a safetensors dtype string, or null when unsupported (e.g. F8 variants).</summary>
    public static torch.ScalarType? ToScalarType(string name)
    {
        foreach (var e in Table) if (e.Name == name) return e.Type;
        return null;
    }

    public static string ToName(torch.ScalarType type)
    {
        foreach (var e in Table) if (e.Type == type) return e.Name;
        throw new NotSupportedException($"safetensors cannot store dtype {type}");
    }

    public static int ElementSize(string name)
    {
        foreach (var e in Table) if (e.Name == name) return e.Size;
        throw new NotSupportedException($"unsupported safetensors dtype '{name}'");
    }

    public static int ElementSize(torch.ScalarType type)
    {
        foreach (var e in Table) if (e.Type == type) return e.Size;
        throw new NotSupportedException($"unsupported dtype {type}");
    }
}
