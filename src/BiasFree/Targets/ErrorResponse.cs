using System.ClientModel.Primitives;

namespace BiasFree.Targets;

/// <summary>
/// An error reply as a <see cref="PipelineResponse"/>, so that <see cref="ChatCompletionsClient"/> throws the same
/// <see cref="System.ClientModel.ClientResultException"/> the OpenAI SDK throws (its <c>Status</c>, and
/// <c>GetRawResponse()</c> with the reply's headers and body). Holds copies: the HTTP reply itself is disposed.
/// </summary>
internal sealed class ErrorResponse : PipelineResponse
{
    private readonly BinaryData _content;
    private readonly HeaderList _headers;

    public ErrorResponse(HttpResponseMessage response, byte[] body)
    {
        Status = (int)response.StatusCode;
        ReasonPhrase = response.ReasonPhrase ?? "";
        _content = BinaryData.FromBytes(body);
        // Response headers only (the request's, with its Authorization, are never kept).
        _headers = new HeaderList([.. response.Headers.Concat(response.Content.Headers).Select(h => new KeyValuePair<string, string>(h.Key, string.Join(",", h.Value)))]);
    }

    public override int Status { get; }

    public override string ReasonPhrase { get; }

    public override Stream? ContentStream { get; set; }

    public override BinaryData Content => _content;

    protected override PipelineResponseHeaders HeadersCore => _headers;

    public override BinaryData BufferContent(CancellationToken cancellationToken = default) => _content;

    public override ValueTask<BinaryData> BufferContentAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult(_content);

    public override void Dispose()
    {
    }

    private sealed class HeaderList(KeyValuePair<string, string>[] all) : PipelineResponseHeaders
    {
        public override IEnumerator<KeyValuePair<string, string>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, string>>)all).GetEnumerator();

        public override bool TryGetValue(string name, out string? value)
        {
            foreach (var (k, v) in all)
            {
                if (k.Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    value = v;
                    return true;
                }
            }
            value = null;
            return false;
        }

        public override bool TryGetValues(string name, out IEnumerable<string>? values)
        {
            var found = all.Where(h => h.Key.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToList();
            values = found.Count > 0 ? found : null;
            return found.Count > 0;
        }
    }
}
