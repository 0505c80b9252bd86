using System.Buffers;
using System.Text.Json;

namespace BiasFree.Runs;

/// <summary>
/// A result row's <c>requests</c> column written as UTF-8 JSON into one reused buffer: the bytes the reflection-based
/// serializer gave with the run record's settings (compact, nulls left out), without the UTF-16 string, the serializer's
/// frame stack or the UTF-8 copy the string needed to be bound (issue #11: about a quarter of what a cache-only rerun
/// allocated per row). Used by the store's one writer, so one instance is never written from two threads at once.
/// </summary>
/// <remarks>
/// The layout is the serializer's for <see cref="RecordedRequest"/> and <see cref="RecordedMessage"/> with
/// those settings: properties in declaration order under their C# names, null properties left out
/// (<c>WhenWritingNull</c>), the default encoder's escaping (the writer's). <c>RequestsJsonTests</c> compares the two on
/// hostile, non-ASCII and empty values; reading the column back goes through the serializer (<see cref="StoreJson"/>).
/// </remarks>
internal sealed class RequestsJson
{
    private readonly ArrayBufferWriter<byte> _buffer = new(4096);
    private readonly Utf8JsonWriter _writer;

    public RequestsJson() => _writer = new Utf8JsonWriter(_buffer);

    /// <summary>The bytes of the last <see cref="Write"/>, valid until the next one.</summary>
    public ReadOnlySpan<byte> Utf8 => _buffer.WrittenSpan;

    /// <summary>Writes <paramref name="requests"/> as the serializer would (a null list as <c>null</c>).</summary>
    public RequestsJson Write(IReadOnlyList<RecordedRequest>? requests)
    {
        _buffer.ResetWrittenCount();
        _writer.Reset(_buffer);
        if (requests is null)
        {
            _writer.WriteNullValue();
        }
        else
        {
            _writer.WriteStartArray();
            // Indexed, not foreach: an interface's enumerator is an object per loop.
            for (var i = 0; i < requests.Count; i++)
            {
                WriteRequest(requests[i]);
            }
            _writer.WriteEndArray();
        }
        _writer.Flush();
        return this;
    }

    private void WriteRequest(RecordedRequest? request)
    {
        if (request is null)
        {
            _writer.WriteNullValue();
            return;
        }
        _writer.WriteStartObject();
        if (request.Messages is { } messages)
        {
            _writer.WriteStartArray("Messages"u8);
            for (var i = 0; i < messages.Count; i++)
            {
                var m = messages[i];
                if (m is null)
                {
                    _writer.WriteNullValue();
                    continue;
                }
                _writer.WriteStartObject();
                if (m.Role is not null) _writer.WriteString("Role"u8, m.Role);
                if (m.Text is not null) _writer.WriteString("Text"u8, m.Text);
                _writer.WriteEndObject();
            }
            _writer.WriteEndArray();
        }
        if (request.Response is not null) _writer.WriteString("Response"u8, request.Response);
        _writer.WriteBoolean("Cached"u8, request.Cached);
        if (request.Details is { } details)
        {
            _writer.WriteStartObject("Details"u8);
            foreach (var (key, value) in details)
            {
                // A dictionary's null value is written, as the serializer writes it (WhenWritingNull skips properties only).
                if (value is null) _writer.WriteNull(key);
                else _writer.WriteString(key, value);
            }
            _writer.WriteEndObject();
        }
        _writer.WriteEndObject();
    }
}
