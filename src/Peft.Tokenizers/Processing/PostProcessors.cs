using Peft.Tokenizers.Pipeline;

namespace Peft.Tokenizers.Processing;

// The post-processors of Hugging Face tokenizers (tokenizers/src/processors), for one sequence.

/// <summary>
/// <c>TemplateProcessing</c>'s <c>single</c> template (and <c>BertProcessing</c>/<c>RobertaProcessing</c>,
/// which are the template <c>cls $A sep</c>): the special tokens' ids before and after the sequence.
/// </summary>
internal sealed class TemplatePostProcessor(IReadOnlyList<int> before, IReadOnlyList<int> after) : IPostProcessor
{
    public int AddedTokens => before.Count + after.Count;

    public List<int> Process(List<int> ids) => [.. before, .. ids, .. after];
}

/// <summary>A post-processor that adds nothing (<c>ByteLevel</c>, which only trims offsets, or none).</summary>
internal sealed class IdentityPostProcessor : IPostProcessor
{
    public int AddedTokens => 0;

    public List<int> Process(List<int> ids) => ids;
}

/// <summary><c>Sequence</c> of post-processors, each on the output of the one before.</summary>
internal sealed class SequencePostProcessor(IReadOnlyList<IPostProcessor> processors) : IPostProcessor
{
    public int AddedTokens => processors.Sum(p => p.AddedTokens);

    public List<int> Process(List<int> ids)
    {
        foreach (var processor in processors) ids = processor.Process(ids);
        return ids;
    }
}
