using System.Runtime.InteropServices;
using TorchSharp;

namespace BiasFree.Engine.Kernels;

/// <summary>
/// The address of a tensor's first element, for the kernels that read or write CPU tensors through pointers.
/// </summary>
/// <remarks>
/// Declared once for every kernel: the native function behind TorchSharp's own data accessors, which the kernels call
/// directly to get a plain pointer. The pointer is only valid while the tensor lives: a caller keeps the tensor
/// referenced (<see cref="GC.KeepAlive"/>) until its last access, since TorchSharp frees native memory in finalizers
/// (docs/engine-performance.md, "Tensor lifetimes").
/// </remarks>
internal static unsafe class TensorMemory
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>Address of <paramref name="tensor"/>'s first element (storage offset included).</summary>
    public static void* Data(torch.Tensor tensor) => (void*)THSTensor_data(tensor.Handle);
}
