namespace Peft.Tokenizers.Pipeline;

/// <summary>A part of the text as the pre-tokenizers see it.</summary>
/// <param name="Text">The (normalized) text of the part.</param>
/// <param name="AtStart">True when the part begins the original text (Metaspace's <c>prepend_scheme: first</c> asks).</param>
internal readonly record struct Piece(string Text, bool AtStart);

/// <summary>tokenizer.json's <c>normalizer</c>: a string-to-string rewrite before splitting.</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

/// <summary>tokenizer.json's <c>pre_tokenizer</c>: splits a part into the words the model sees one at a time.</summary>
internal interface IPreTokenizer
{
    IEnumerable<Piece> Split(Piece piece);
}

/// <summary>tokenizer.json's <c>model</c>: a word to ids, and the vocabulary both ways.</summary>
internal interface ITokenModel
{
    void Tokenize(string word, List<int> ids);
    int? TokenToId(string token);
    string? IdToToken(int id);
    int VocabularySize { get; }
}

/// <summary>tokenizer.json's <c>post_processor</c>: the special tokens around one sequence.</summary>
internal interface IPostProcessor
{
    /// <summary>How many ids <see cref="Process"/> adds (truncation keeps room for them).</summary>
    int AddedTokens { get; }

    List<int> Process(List<int> ids);
}

/// <summary>tokenizer.json's <c>decoder</c>: rewrites the list of tokens on the way back to text.</summary>
internal interface IDecoder
{
    List<string> DecodeChain(List<string> tokens);
}
