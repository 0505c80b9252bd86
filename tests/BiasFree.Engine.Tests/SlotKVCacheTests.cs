using BiasFree.Engine.Models;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>Row moves of the slot cache copy a row's filled positions and nothing past them.</summary>
public class SlotKVCacheTests
{
    private const int Layers = 2, Heads = 2, Width = 6, HeadDim = 3;

    /// <summary>A cache of 3 slots whose entry (slot s, position p) holds 100·s + p in every element (keys) and its negative (values).</summary>
    private static SlotKVCache Filled()
    {
        var cache = new SlotKVCache(Layers, Heads, HeadDim, ScalarType.Float32, CPU);
        cache.Resize(3, Width, 0);
        using var _ = no_grad();
        // Written the way a forward pass does: packed [1, heads, N, D] keys/values with a slot and a position per token.
        var slots = new List<long>();
        var positions = new List<long>();
        for (int s = 0; s < 3; s++)
        for (int p = 0; p < Width; p++)
        {
            slots.Add(s);
            positions.Add(p);
        }
        using var value = tensor(slots.Zip(positions, (s, p) => (float)(100 * s + p)).ToArray()).view(1, 1, -1, 1).expand(1, Heads, -1, HeadDim).contiguous();
        using var slotIndex = tensor(slots.ToArray());
        using var positionIndex = tensor(positions.ToArray());
        for (int layer = 0; layer < Layers; layer++)
        {
            using var negative = -value;
            cache.Write(layer, value, negative, slotIndex, positionIndex);
        }
        return cache;
    }

    /// <summary>The key (or value) entries of every slot and position in one layer, read back through a pass's view; each entry's elements are equal.</summary>
    private static float[,] Keys(SlotKVCache cache, int layer, bool values = false)
    {
        var (k, v) = cache.Rows(layer, 0, 3, Width);
        var t = values ? -v : k;
        var result = new float[3, Width];
        for (int s = 0; s < 3; s++)
        for (int p = 0; p < Width; p++)
        {
            using var entry = t[s, TensorIndex.Colon, p, TensorIndex.Colon];
            Assert.True(entry.eq(entry[0, 0]).all().item<bool>(), "an entry's elements differ");
            result[s, p] = entry[0, 0].item<float>();
        }
        k.Dispose();
        v.Dispose();
        if (values) t.Dispose();
        return result;
    }

    [Fact]
    public void CopyRowCopiesTheFirstPositionsOfEveryLayerAndLeavesTheRest()
    {
        using var cache = Filled();
        cache.CopyRow(2, 0, 4);
        for (int layer = 0; layer < Layers; layer++)
        foreach (bool values in new[] { false, true })
        {
            var e = Keys(cache, layer, values);
            for (int p = 0; p < Width; p++)
            {
                Assert.Equal(p < 4 ? 200 + p : p, e[0, p]);
                Assert.Equal(100 + p, e[1, p]);
                Assert.Equal(200 + p, e[2, p]);
            }
        }
    }

    [Fact]
    public void SwapRowsExchangesTheFirstPositionsOfEveryLayerAndLeavesTheRest()
    {
        using var cache = Filled();
        cache.SwapRows(0, 1, 5);
        cache.SwapRows(2, 2, 6); // a row with itself: nothing
        cache.SwapRows(0, 2, 0); // no positions: nothing
        for (int layer = 0; layer < Layers; layer++)
        foreach (bool values in new[] { false, true })
        {
            var e = Keys(cache, layer, values);
            for (int p = 0; p < Width; p++)
            {
                Assert.Equal(p < 5 ? 100 + p : p, e[0, p]);
                Assert.Equal(p < 5 ? p : 100 + p, e[1, p]);
                Assert.Equal(200 + p, e[2, p]);
            }
        }
    }

    [Fact]
    public void RowMovesRefuseMorePositionsThanTheWidth()
    {
        using var cache = Filled();
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.CopyRow(0, 1, Width + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.SwapRows(0, 1, Width + 1));
    }
}
