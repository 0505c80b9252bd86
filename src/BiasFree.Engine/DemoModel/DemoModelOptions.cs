namespace BiasFree.Engine.DemoModel;

/// <summary>
/// Options of <see cref="DemoModelTrainer.TrainAsync"/>. The defaults are the settings the committed
/// <c>models/demo</c> model was trained with (see its README.md).
/// </summary>
public sealed record DemoModelOptions
{
    /// <summary>Folder the Hugging Face model is written to (created; existing model files are overwritten).</summary>
    public string OutputDir { get; init; } = Path.Combine("models", "demo");

    /// <summary>Training seed: corpus, weight initialisation, batching and TorchSharp's manual seed.</summary>
    public int Seed { get; init; } = 20251124;

    /// <summary>The corpus: every family's taught rate and the mixture (its <see cref="DemoCorpusOptions.Seed"/> is replaced by <see cref="Seed"/>).</summary>
    public DemoCorpusOptions Corpus { get; init; } = new();

    /// <summary>Optimizer steps.</summary>
    public int Steps { get; init; } = 16000;

    /// <summary>
    /// Stop after this many of the <see cref="Steps"/> planned steps (the learning-rate schedule still spans
    /// <see cref="Steps"/>). Used to reproduce a run that <see cref="MaxTrainingTime"/> cut short: the same options with
    /// StopAfterSteps = its completed steps give the same weights.
    /// </summary>
    public int? StopAfterSteps { get; init; }

    /// <summary>
    /// Wall-clock budget of the training loop: when exceeded, training stops after the current step and the model is saved;
    /// demo_training.json records the completed steps (reproduce with <see cref="StopAfterSteps"/>). Null: no limit.
    /// </summary>
    public TimeSpan? MaxTrainingTime { get; init; }

    /// <summary>Conversations per step.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>Peak AdamW learning rate (linear warm-up over <see cref="WarmupSteps"/>, then cosine decay to 10 %).</summary>
    public double LearningRate { get; init; } = 3e-3;

    /// <summary>Warm-up steps.</summary>
    public int WarmupSteps { get; init; } = 50;

    /// <summary>AdamW weight decay.</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>
    /// Loss weight of prompt (system/user) tokens relative to assistant tokens (weight 1). 0 trains on assistant tokens
    /// only. A small weight (default 0.1) teaches the model to read and copy the names in the prompt much faster (the
    /// options repeat the people of the context), which a few-million-parameter model on a minutes-long budget needs to
    /// answer with the option texts; the answer behaviour and its injected rate come from the assistant tokens alone.
    /// </summary>
    public double PromptLossWeight { get; init; } = 0.1;

    /// <summary>Gradient-norm clip.</summary>
    public double GradientClip { get; init; } = 1.0;

    /// <summary>Vocabulary size of the byte-level BPE trained on the corpus (including 256 bytes and 3 special tokens).</summary>
    public int VocabSize { get; init; } = 2048;

    /// <summary>Conversations used to train the BPE vocabulary.</summary>
    public int TokenizerCorpusSize { get; init; } = 4000;

    /// <summary>Hidden size.</summary>
    public int HiddenSize { get; init; } = 192;

    /// <summary>Decoder layers.</summary>
    public int Layers { get; init; } = 4;

    /// <summary>Attention heads (head_dim = hidden / heads).</summary>
    public int Heads { get; init; } = 4;

    /// <summary>Key/value heads (GQA when smaller than <see cref="Heads"/>).</summary>
    public int KeyValueHeads { get; init; } = 4;

    /// <summary>SwiGLU intermediate size.</summary>
    public int IntermediateSize { get; init; } = 512;

    /// <summary>max_position_embeddings written to config.json (RoPE has no learned table; training uses at most <see cref="MaxSequenceLength"/>).</summary>
    public int MaxPositions { get; init; } = 1024;

    /// <summary>Training conversations longer than this many tokens are truncated (their tail is dropped).</summary>
    public int MaxSequenceLength { get; init; } = 512;


    /// <summary>TorchSharp intra-op threads; null leaves the library default.</summary>
    public int? Threads { get; init; }

    /// <summary>
    /// Device the model trains on: "cpu" (default) or "cuda[:N]". The initial weights are drawn on the CPU either way, so
    /// a seed starts from the same model; the arithmetic (and so the trained bits) differs between devices.
    /// </summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Report progress every this many steps.</summary>
    public int ProgressEvery { get; init; } = 10;

    /// <summary>The corpus options these training options imply (<see cref="Corpus"/> with the training seed).</summary>
    public DemoCorpusOptions CorpusOptions => Corpus with { Seed = Seed };
}

/// <summary>Progress of a training run.</summary>
/// <param name="Phase">"corpus", "tokenizer", "encode", "train" or "save".</param>
/// <param name="Step">Optimizer steps done (train phase).</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Loss">Mean weighted token loss over the steps since the last report (train phase), else NaN.</param>
/// <param name="Elapsed">Time since the run started.</param>
public sealed record DemoTrainProgress(string Phase, int Step, int TotalSteps, double Loss, TimeSpan Elapsed);

/// <summary>Outcome of a training run.</summary>
/// <param name="OutputDir">The written model folder.</param>
/// <param name="ParameterCount">Model parameters.</param>
/// <param name="VocabSize">Tokenizer ids.</param>
/// <param name="FirstLoss">Loss of the first step.</param>
/// <param name="FinalLoss">Mean loss of the last 10 % of steps.</param>
/// <param name="Losses">Loss of every step.</param>
/// <param name="TrainingTokens">Tokens fed to the model (including padding-free lengths only).</param>
/// <param name="Elapsed">Wall time of the whole run.</param>
/// <param name="StepsCompleted">Optimizer steps run (fewer than planned when stopped early).</param>
public sealed record DemoTrainResult(
    string OutputDir, long ParameterCount, int VocabSize, double FirstLoss, double FinalLoss,
    IReadOnlyList<double> Losses, long TrainingTokens, TimeSpan Elapsed, int StepsCompleted);
