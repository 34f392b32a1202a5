namespace Peft.Tokenizers.Pipeline;

/// <summary>What <see cref="PretrainedTokenizer"/> needs from an implementation: tokenizer.json's pipeline or Microsoft.ML.Tokenizers.</summary>
internal interface ITokenizerBackend
{
    /// <summary>The ids of a text without the special tokens a sequence is framed with.</summary>
    List<int> EncodeContent(string text);

    /// <summary>Frames a sequence with its special tokens.</summary>
    List<int> AddSpecialTokens(List<int> ids);

    /// <summary>How many ids <see cref="AddSpecialTokens"/> adds.</summary>
    int SpecialTokensAdded { get; }

    string Decode(IEnumerable<int> ids, bool skipSpecialTokens);

    int? TokenToId(string token);

    string? IdToToken(int id);

    int VocabularySize { get; }
}
