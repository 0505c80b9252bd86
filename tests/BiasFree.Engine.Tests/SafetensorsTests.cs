using System.Text;
using BiasFree.Engine.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace BiasFree.Engine.Tests;

public class SafetensorsTests
{
    private static byte[] HandBuilt(string json, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(json);
        var bytes = new List<byte>();
        bytes.AddRange(BitConverter.GetBytes((ulong)header.Length));
        bytes.AddRange(header);
        bytes.AddRange(data);
        return bytes.ToArray();
    }

    [Fact]
    public void ReadsHandBuiltFileWithExactBytes()
    {
        using var dir = new TempDir();
        var data = new List<byte>();
        data.AddRange(BitConverter.GetBytes(1.5f));
        data.AddRange(BitConverter.GetBytes(-2.0f));
        data.AddRange(BitConverter.GetBytes(3.25f));
        data.AddRange(BitConverter.GetBytes(long.MaxValue));
        data.AddRange(BitConverter.GetBytes(-7L));
        data.AddRange(new byte[] { 0x80, 0x3f }); // bf16 1.0
        string json = """{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[1,3],"data_offsets":[0,12]},"ids":{"dtype":"I64","shape":[2],"data_offsets":[12,28]},"b":{"dtype":"BF16","shape":[],"data_offsets":[28,30]}}""";
        var path = dir.File("hand.safetensors");
        File.WriteAllBytes(path, HandBuilt(json, data.ToArray()));

        using var f = SafetensorsFile.Open(path);
        Assert.Equal("pt", f.Metadata["format"]);
        Assert.Equal(3, f.Names.Count);
        using var w = f.Read("w");
        Assert.Equal(ScalarType.Float32, w.dtype);
        Assert.Equal(new long[] { 1, 3 }, w.shape);
        Assert.Equal(new[] { 1.5f, -2.0f, 3.25f }, w.data<float>().ToArray());
        using var ids = f.Read("ids");
        Assert.Equal(new[] { long.MaxValue, -7L }, ids.data<long>().ToArray());
        using var b = f.Read("b");
        Assert.Equal(ScalarType.BFloat16, b.dtype);
        Assert.Equal(1.0f, b.to_type(ScalarType.Float32).item<float>());
    }

    [Fact]
    public void WriterProducesExactBytesWithPaddedHeader()
    {
        using var dir = new TempDir();
        var path = dir.File("w.safetensors");
        using var t = tensor(new float[] { 1f, 2f }, new long[] { 2 });
        SafetensorsWriter.Save(path, [new("x", t)]);
        var bytes = File.ReadAllBytes(path);
        string json = """{"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""";
        int padded = (json.Length + 7) / 8 * 8;
        var expected = new List<byte>();
        expected.AddRange(BitConverter.GetBytes((ulong)padded));
        expected.AddRange(Encoding.ASCII.GetBytes(json.PadRight(padded)));
        expected.AddRange(BitConverter.GetBytes(1f));
        expected.AddRange(BitConverter.GetBytes(2f));
        Assert.Equal(expected.ToArray(), bytes);
        Assert.Equal(0, (8 + padded) % 8);
    }

    [Fact]
    public void RoundTripsKnownValuesAcrossDtypes()
    {
        using var dir = new TempDir();
        var path = dir.File("rt.safetensors");
        using var scope = NewDisposeScope();
        var gen = new Generator(seed: 5);
        var tensors = new Dictionary<string, Tensor>
        {
            ["f32"] = randn([3, 5], generator: gen),
            ["bf16"] = randn([4, 2], generator: gen).to_type(ScalarType.BFloat16),
            ["f64"] = tensor(new[] { Math.PI, -1e300 }),
            ["i64"] = tensor(new long[] { 1, -2, 3 }),
            ["i32"] = tensor(new[] { 7, 8 }),
            ["u8"] = tensor(new byte[] { 0, 255 }),
            ["bool"] = tensor(new[] { true, false, true }),
            ["empty"] = zeros([0, 4]),
        };
        SafetensorsWriter.Save(path, tensors);
        using var f = SafetensorsFile.Open(path);
        foreach (var (name, t) in tensors)
        {
            using var r = f.Read(name);
            Assert.Equal(t.dtype, r.dtype);
            Assert.Equal(t.shape, r.shape);
            Assert.True(t.equal(r).all().item<bool>(), name);
        }
    }

    [Fact]
    public void ConvertsFloat16OnLoadAndHonoursTargetFloatType()
    {
        using var dir = new TempDir();
        var path = dir.File("h.safetensors");
        using var scope = NewDisposeScope();
        var h = tensor(new float[] { 0.5f, -3f, 1024f }).to_type(ScalarType.Float16);
        SafetensorsWriter.Save(path, [new("h", h), new("i", tensor(new long[] { 4 }))]);
        using var f = SafetensorsFile.Open(path);
        var asBf16 = f.Read("h");
        Assert.Equal(ScalarType.BFloat16, asBf16.dtype);
        var asF32 = f.Read("h", ScalarType.Float32);
        Assert.Equal(new[] { 0.5f, -3f, 1024f }, asF32.data<float>().ToArray());
        Assert.Equal(ScalarType.Int64, f.Read("i", ScalarType.Float32).dtype);
    }

    [Fact]
    public void ChunkedCopyMatchesWholeCopy()
    {
        using var dir = new TempDir();
        var path = dir.File("c.safetensors");
        using var scope = NewDisposeScope();
        var t = arange(1000, dtype: ScalarType.Float32).reshape(10, 100);
        long old = SafetensorsFile.CopyChunkBytes;
        try
        {
            SafetensorsFile.CopyChunkBytes = 28; // 7 floats per chunk: many chunks, ragged tail
            SafetensorsWriter.Save(path, [new("t", t)]);
            using var f = SafetensorsFile.Open(path);
            Assert.True(t.equal(f.Read("t")).all().item<bool>());
        }
        finally
        {
            SafetensorsFile.CopyChunkBytes = old;
        }
    }

    [Fact]
    public void LoadsShardedCheckpointThroughIndex()
    {
        using var dir = new TempDir();
        using var scope = NewDisposeScope();
        var tensors = Enumerable.Range(0, 5).ToDictionary(i => $"layer.{i}.weight", i => full([4, 4], (float)i));
        var files = SafetensorsWriter.SaveSharded(dir.Path, tensors, maxShardBytes: 2 * 64);
        Assert.Equal(3, files.Count);
        Assert.True(File.Exists(dir.File("model.safetensors.index.json")));
        using var ckpt = SafetensorsCheckpoint.Open(dir.Path);
        Assert.Equal(5, ckpt.Names.Count);
        Assert.Equal(3, ckpt.Files.Count);
        for (int i = 0; i < 5; i++)
            Assert.Equal((float)i, ckpt.Read($"layer.{i}.weight")[3, 3].item<float>());
    }

    [Theory]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]", "not valid JSON")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", "needs 12 bytes")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", "run past the data block")]
    [InlineData("{\"x\":{\"shape\":[2],\"data_offsets\":[0,8]}}", "dtype")]
    public void MalformedHeaderGivesClearErrorNamingFile(string json, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, HandBuilt(json, new byte[8]));
        var e = Assert.ThrowsAny<IOException>(() => SafetensorsFile.Open(path));
        Assert.Contains("bad.safetensors", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void HeaderLengthBeyondFileIsRejected()
    {
        using var dir = new TempDir();
        var path = dir.File("trunc.safetensors");
        File.WriteAllBytes(path, BitConverter.GetBytes(1_000_000UL).Concat(new byte[] { (byte)'{' }).ToArray());
        var e = Assert.ThrowsAny<IOException>(() => SafetensorsFile.Open(path));
        Assert.Contains("trunc.safetensors", e.Message);
        Assert.Contains("header length", e.Message);
    }
}
