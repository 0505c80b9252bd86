using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace BiasFree.Engine.Tests;

/// <summary>
/// Finds, in a compiled assembly's IL, the places that hand TorchSharp a <c>Scalar</c> that nothing keeps alive while the
/// native call reads it (docs/engine-performance.md, "Tensor lifetimes"). TorchSharp 0.107 frees a Scalar's native value
/// in its finalizer and passes only the handle to native code, so a Scalar referenced by nothing but the call's argument
/// can be collected and freed under the call. Two kinds of place are reported:
/// <list type="bullet">
/// <item>an implicit conversion to Scalar (<c>x.pow(2)</c>, <c>clamp_min(0)</c>) whose result is not stored in a static
/// or instance field, or in a local that is later disposed (<c>using Scalar s = ...</c>) or passed to <c>GC.KeepAlive</c>;</item>
/// <item>a call to a TorchSharp method that makes such a Scalar itself and passes only its handle on (found the same way
/// in TorchSharp's own IL, following its calls): <c>a + b</c> and <c>add(b)</c> make their alpha of 1, <c>x * 0.5</c>
/// converts its double, <c>arange(stop)</c> makes its start and step.</item>
/// </list>
/// Methods are told apart by their full signatures, so <c>x * y</c> for two tensors (which makes no Scalar) is not
/// confused with <c>x * 0.5</c>.
/// </summary>
internal static class ScalarLifetimeScan
{
    /// <summary>One place: the method (type::name(parameters)), the IL offset, and what it does.</summary>
    public sealed record Site(string Method, int Offset, string What)
    {
        public override string ToString() => $"{Method} at IL_{Offset:x4}: {What}";
    }

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields()
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The places in <paramref name="assemblyPath"/> that hand TorchSharp (at <paramref name="torchSharpPath"/>) an unrooted Scalar.</summary>
    public static IReadOnlyList<Site> Find(string torchSharpPath, string assemblyPath)
    {
        var makers = ScalarMakers(torchSharpPath);
        using var pe = new PEReader(File.OpenRead(assemblyPath));
        var md = pe.GetMetadataReader();
        var sites = new List<Site>();
        foreach (var handle in md.MethodDefinitions)
        {
            var method = md.GetMethodDefinition(handle);
            if (method.RelativeVirtualAddress == 0)
            {
                continue;
            }
            var name = KeyOf(md, handle);
            var ops = Decode(pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes()!);
            for (var i = 0; i < ops.Count; i++)
            {
                var op = ops[i];
                if (op.Code.FlowControl != FlowControl.Call || op.Token == 0)
                {
                    continue;
                }
                var callee = KeyOf(md, MetadataTokens.EntityHandle(op.Token));
                if (IsConversion(callee))
                {
                    if (!Rooted(md, ops, i))
                    {
                        sites.Add(new Site(name, op.Offset, $"converts to a Scalar that nothing keeps alive ({callee})"));
                    }
                }
                else if (makers.Contains(callee))
                {
                    sites.Add(new Site(name, op.Offset, $"calls {callee}, which makes a Scalar that nothing keeps alive"));
                }
            }
        }
        return sites;
    }

    /// <summary>
    /// TorchSharp's methods that call a conversion to Scalar inside themselves, or call such a method (to a fixed point).
    /// TorchSharp passes each one's handle straight on, so each of these makes a Scalar the caller cannot keep alive.
    /// </summary>
    public static HashSet<string> ScalarMakers(string torchSharpPath)
    {
        using var pe = new PEReader(File.OpenRead(torchSharpPath));
        var md = pe.GetMetadataReader();
        var calls = new Dictionary<string, HashSet<string>>();
        var makers = new HashSet<string>();
        foreach (var handle in md.MethodDefinitions)
        {
            var method = md.GetMethodDefinition(handle);
            var name = KeyOf(md, handle);
            if (method.RelativeVirtualAddress == 0 || IsConversion(name))
            {
                continue;
            }
            if (!calls.TryGetValue(name, out var callees))
            {
                calls[name] = callees = [];
            }
            foreach (var op in Decode(pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes()!))
            {
                if (op.Code.FlowControl == FlowControl.Call && op.Token != 0)
                {
                    var callee = KeyOf(md, MetadataTokens.EntityHandle(op.Token));
                    callees.Add(callee);
                    if (IsConversion(callee))
                    {
                        makers.Add(name);
                    }
                }
            }
        }
        for (var changed = true; changed;)
        {
            changed = false;
            foreach (var (name, callees) in calls)
            {
                if (!makers.Contains(name) && callees.Overlaps(makers))
                {
                    makers.Add(name);
                    changed = true;
                }
            }
        }
        return makers;
    }

    // A conversion to Scalar: the implicit operators and the ToScalar extension methods.
    private static bool IsConversion(string method) =>
        method.StartsWith("TorchSharp.Scalar::op_Implicit(", StringComparison.Ordinal)
        || method.StartsWith("TorchSharp.ScalarExtensionMethods::ToScalar(", StringComparison.Ordinal);

    // Whether the conversion at ops[at] is stored where it stays referenced: a field, or a local that is later disposed or
    // passed to GC.KeepAlive (a local used only as the call's argument is dead, to the JIT, once the call has it).
    private static bool Rooted(MetadataReader md, List<Instruction> ops, int at)
    {
        var next = ops[at + 1];
        if (next.Code == OpCodes.Stsfld || next.Code == OpCodes.Stfld)
        {
            return true;
        }
        if (LocalStored(next) is not int local)
        {
            return false;
        }
        for (var i = 0; i + 1 < ops.Count; i++)
        {
            if (LocalLoaded(ops[i]) == local && ops[i + 1].Code.FlowControl == FlowControl.Call && ops[i + 1].Token != 0)
            {
                var callee = KeyOf(md, MetadataTokens.EntityHandle(ops[i + 1].Token));
                if (callee.EndsWith("::Dispose()", StringComparison.Ordinal) || callee.StartsWith("System.GC::KeepAlive(", StringComparison.Ordinal))
                {
                    return true;
                }
            }
        }
        return false;
    }

    private static int? LocalStored(Instruction op) =>
        op.Code == OpCodes.Stloc_0 ? 0 : op.Code == OpCodes.Stloc_1 ? 1 : op.Code == OpCodes.Stloc_2 ? 2 : op.Code == OpCodes.Stloc_3 ? 3
        : op.Code == OpCodes.Stloc_S || op.Code == OpCodes.Stloc ? op.Operand : null;

    private static int? LocalLoaded(Instruction op) =>
        op.Code == OpCodes.Ldloc_0 ? 0 : op.Code == OpCodes.Ldloc_1 ? 1 : op.Code == OpCodes.Ldloc_2 ? 2 : op.Code == OpCodes.Ldloc_3 ? 3
        : op.Code == OpCodes.Ldloc_S || op.Code == OpCodes.Ldloc ? op.Operand : null;

    private readonly record struct Instruction(int Offset, OpCode Code, int Token, int Operand);

    private static List<Instruction> Decode(byte[] il)
    {
        var ops = new List<Instruction>();
        for (var i = 0; i < il.Length;)
        {
            var offset = i;
            short value = il[i++];
            if (value == 0xFE)
            {
                value = (short)(0xFE00 | il[i++]);
            }
            var code = OpCodesByValue[value];
            int token = 0, operand = 0;
            switch (code.OperandType)
            {
                case OperandType.InlineNone:
                    break;
                case OperandType.ShortInlineVar:
                    operand = il[i];
                    i += 1;
                    break;
                case OperandType.ShortInlineBrTarget or OperandType.ShortInlineI:
                    i += 1;
                    break;
                case OperandType.InlineVar:
                    operand = BitConverter.ToUInt16(il, i);
                    i += 2;
                    break;
                case OperandType.InlineI8 or OperandType.InlineR:
                    i += 8;
                    break;
                case OperandType.InlineSwitch:
                    i += 4 + (4 * BitConverter.ToInt32(il, i));
                    break;
                case OperandType.InlineMethod or OperandType.InlineTok or OperandType.InlineField or OperandType.InlineType:
                    token = BitConverter.ToInt32(il, i);
                    i += 4;
                    break;
                default: // InlineI, InlineBrTarget, InlineString, InlineSig, ShortInlineR: four bytes
                    i += 4;
                    break;
            }
            ops.Add(new Instruction(offset, code, code.FlowControl == FlowControl.Call ? token : 0, operand));
        }
        return ops;
    }

    // "Namespace.Type+Nested::Name(parameter types)" for a method definition, reference or instantiation.
    private static string KeyOf(MetadataReader md, EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.MethodDefinition:
                var definition = md.GetMethodDefinition((MethodDefinitionHandle)handle);
                return $"{TypeName(md, definition.GetDeclaringType())}::{md.GetString(definition.Name)}{Parameters(md, definition.Signature)}";
            case HandleKind.MemberReference:
                var reference = md.GetMemberReference((MemberReferenceHandle)handle);
                var parameters = reference.GetKind() == MemberReferenceKind.Method ? Parameters(md, reference.Signature) : "";
                return $"{TypeName(md, reference.Parent)}::{md.GetString(reference.Name)}{parameters}";
            case HandleKind.MethodSpecification:
                return KeyOf(md, md.GetMethodSpecification((MethodSpecificationHandle)handle).Method);
            default:
                return "?";
        }
    }

    private static string TypeName(MetadataReader md, EntityHandle handle)
    {
        switch (handle.Kind)
        {
            case HandleKind.TypeDefinition:
                var definition = md.GetTypeDefinition((TypeDefinitionHandle)handle);
                var outer = definition.GetDeclaringType();
                return outer.IsNil
                    ? $"{md.GetString(definition.Namespace)}.{md.GetString(definition.Name)}"
                    : $"{TypeName(md, outer)}+{md.GetString(definition.Name)}";
            case HandleKind.TypeReference:
                var reference = md.GetTypeReference((TypeReferenceHandle)handle);
                return reference.ResolutionScope.Kind == HandleKind.TypeReference
                    ? $"{TypeName(md, (TypeReferenceHandle)reference.ResolutionScope)}+{md.GetString(reference.Name)}"
                    : $"{md.GetString(reference.Namespace)}.{md.GetString(reference.Name)}";
            case HandleKind.TypeSpecification:
                var blob = md.GetBlobReader(md.GetTypeSpecification((TypeSpecificationHandle)handle).Signature);
                return new SignatureDecoder<string, object?>(new TypeNames(), md, null).DecodeType(ref blob);
            default:
                return "?";
        }
    }

    private static string Parameters(MetadataReader md, BlobHandle signature)
    {
        var blob = md.GetBlobReader(signature);
        var decoded = new SignatureDecoder<string, object?>(new TypeNames(), md, null).DecodeMethodSignature(ref blob);
        return $"({string.Join(",", decoded.ParameterTypes)})";
    }

    private sealed class TypeNames : ISignatureTypeProvider<string, object?>
    {
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";
        public string GetByReferenceType(string elementType) => elementType + "&";
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType}<{string.Join(",", typeArguments)}>";
        public string GetGenericMethodParameter(object? genericContext, int index) => $"!!{index}";
        public string GetGenericTypeParameter(object? genericContext, int index) => $"!{index}";
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetPinnedType(string elementType) => elementType;
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => TypeName(reader, handle);
        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => TypeName(reader, handle);
        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) => TypeName(reader, handle);
    }
}
