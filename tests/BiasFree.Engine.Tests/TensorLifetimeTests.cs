using BiasFree.Engine.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

/// <summary>
/// TorchSharp frees a tensor's native memory in its finalizer, and a P/Invoke passes only the handle: a temporary such
/// as the views in <c>a.narrow(..).copy_(b.narrow(..))</c>, made outside a dispose scope, has no root while native code
/// copies through it, so a garbage collection at that moment frees it under the copy (CI saw this as a crash of the
/// engine tests, exit 139, in <see cref="SlotKVCache.Resize"/>). These tests run the caches' copies while another thread
/// collects garbage without pause, then compare every value with a plain array that went through the same moves.
/// </summary>
public class TensorLifetimeTests
{
    /// <summary>Collects garbage and runs finalizers without pause until disposed.</summary>
    private sealed class Collector : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Thread _thread;
        public long Collections;

        public Collector()
        {
            _thread = new Thread(() =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    Interlocked.Increment(ref Collections);
                }
            }) { IsBackground = true };
            _thread.Start();
        }

        public void Dispose()
        {
            _stop.Cancel();
            _thread.Join();
            _stop.Dispose();
        }
    }

    // Copies of a few hundred kilobytes to a few megabytes: each takes long enough for a collection to land inside it.
    private const int Layers = 4, KvHeads = 4, HeadDim = 64;

    /// <summary>The moves the batcher makes on its cache: grow keeping the running rows, share a prefix, compact, reorder.</summary>
    private static void Moves(SlotKVCache cache, int slots, int width, int round)
    {
        int grownSlots = slots + 1 + round % 3, grownWidth = width + 16 * (round % 2), keep = Math.Min(slots, 1 + round % 4);
        cache.Resize(grownSlots, grownWidth, keep);
        cache.CopyPositions(0, grownSlots - 1, 1, width / 2);
        cache.CopyRow(keep - 1, grownSlots - 2, width);
        cache.SwapRows(0, grownSlots - 1, width);
    }

    private static void Fill(SlotKVCache cache, Tensor[] contents)
    {
        for (int l = 0; l < Layers; l++)
        {
            using var scope = NewDisposeScope();
            var (k, v) = cache.Rows(l, 0, cache.Slots, cache.Width);
            k.copy_(contents[2 * l]);
            v.copy_(contents[2 * l + 1]);
        }
    }

    private static void AssertSame(SlotKVCache expected, SlotKVCache actual, int round)
    {
        Assert.Equal((expected.Slots, expected.Width), (actual.Slots, actual.Width));
        for (int l = 0; l < Layers; l++)
        {
            using var scope = NewDisposeScope();
            var (ek, ev) = expected.Rows(l, 0, expected.Slots, expected.Width);
            var (ak, av) = actual.Rows(l, 0, actual.Slots, actual.Width);
            Assert.True(ek.equal(ak).all().item<bool>() && ev.equal(av).all().item<bool>(), $"round {round}: layer {l} differs from the same moves made without collections");
        }
    }

    [Fact]
    public void SlotCacheResizesAndRowCopiesKeepEveryValueWhileGarbageIsCollectedWithoutPause()
    {
        using var quiet = new SlotKVCache(Layers, KvHeads, HeadDim, ScalarType.Float32, CPU);
        using var busy = new SlotKVCache(Layers, KvHeads, HeadDim, ScalarType.Float32, CPU);
        var gen = new Generator(11);
        long collections = 0;
        for (int round = 0; round < 60; round++)
        {
            int slots = 2 + round % 5, width = 64 + round % 4 * 64;
            Tensor[] contents;
            using (var scope = NewDisposeScope())
            {
                contents = Enumerable.Range(0, 2 * Layers).Select(_ => rand([slots, KvHeads, width, HeadDim], generator: gen).DetachFromDisposeScope()).ToArray();
            }
            foreach (var c in new[] { quiet, busy })
            {
                c.Resize(0, 0, 0);
                c.Resize(slots, width, 0);
                Fill(c, contents);
            }
            foreach (var t in contents) t.Dispose();
            Moves(quiet, slots, width, round);
            using (var collector = new Collector())
            {
                Moves(busy, slots, width, round);
                while (Interlocked.Read(ref collector.Collections) < 1) Thread.Yield();
                collections += Interlocked.Read(ref collector.Collections);
            }
            AssertSame(quiet, busy, round);
        }
        Assert.True(collections >= 60, $"only {collections} collections ran during the copies");
    }

    [Fact]
    public void KVCacheAppendsKeepEveryValueWhileGarbageIsCollectedWithoutPause()
    {
        // The single-sequence cache grows by doubling and copies what it holds on every growth.
        var gen = new Generator(5);
        for (int round = 0; round < 12; round++)
        {
            using var quiet = new KVCache(1, initialCapacity: 1);
            using var busy = new KVCache(1, initialCapacity: 1);
            for (int step = 0; step < 12; step++)
            {
                int n = 1 + (step * 7 + round) % 40;
                using var scope = NewDisposeScope();
                var t = rand([1, KvHeads * 4, n, HeadDim], generator: gen);
                var (expected, _) = quiet.Append(0, t, t);
                quiet.Advance(n);
                Tensor actual;
                using (new Collector()) (actual, _) = busy.Append(0, t, t);
                busy.Advance(n);
                Assert.True(expected.equal(actual).all().item<bool>(), $"round {round}, step {step}: cached keys differ");
            }
        }
    }
}
