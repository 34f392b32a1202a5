namespace Peft.Cli.Data;

/// <summary>One classification example: a text and its label's index.</summary>
/// <param name="Text">The text.</param>
/// <param name="Label">Index into the dataset's label names.</param>
public sealed record LabelledText(string Text, int Label);

/// <summary>A labelled text dataset split into training and test examples.</summary>
/// <param name="Labels">Label names; an example's Label indexes this list.</param>
/// <param name="Train">Training examples.</param>
/// <param name="Test">Held-out examples (never used to choose hyper-parameters).</param>
/// <param name="Source">Where the data came from, for reports.</param>
public sealed record TextClassificationData(IReadOnlyList<string> Labels, IReadOnlyList<LabelledText> Train, IReadOnlyList<LabelledText> Test, string Source);
