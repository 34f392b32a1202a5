using System.Text.Json;

namespace Peft.Tokenizers;

/// <summary>Which end of a sequence padding or truncation works on (transformers' <c>padding_side</c>, <c>truncation_side</c>).</summary>
public enum Side
{
    /// <summary>After the tokens (the default).</summary>
    Right,
    /// <summary>Before the tokens (decoder-only generation pads on the left).</summary>
    Left,
}

/// <summary>How <see cref="PretrainedTokenizer.EncodeBatch"/> pads.</summary>
public enum Padding
{
    /// <summary>To the longest sequence of the batch (transformers' <c>padding=True</c>).</summary>
    Longest,
    /// <summary>To the maximum length (transformers' <c>padding="max_length"</c>).</summary>
    MaxLength,
}

/// <summary>
/// What <c>tokenizer_config.json</c> (and <c>special_tokens_map.json</c>) say about a tokenizer: its special
/// tokens, the padding and truncation sides, and the longest input the model takes.
/// </summary>
public sealed record TokenizerSettings
{
    /// <summary>Beginning-of-sequence token.</summary>
    public string? BosToken { get; init; }

    /// <summary>End-of-sequence token.</summary>
    public string? EosToken { get; init; }

    /// <summary>Unknown token.</summary>
    public string? UnkToken { get; init; }

    /// <summary>Padding token; null when the model has none (GPT-2): set one before padding a batch.</summary>
    public string? PadToken { get; init; }

    /// <summary>Separator token (BERT's [SEP]).</summary>
    public string? SepToken { get; init; }

    /// <summary>Classification token (BERT's [CLS]).</summary>
    public string? ClsToken { get; init; }

    /// <summary>Mask token (BERT's [MASK]).</summary>
    public string? MaskToken { get; init; }

    /// <summary>Where padding goes.</summary>
    public Side PaddingSide { get; init; } = Side.Right;

    /// <summary>Which end truncation cuts.</summary>
    public Side TruncationSide { get; init; } = Side.Right;

    /// <summary><c>model_max_length</c>; null when the file gives none or transformers' "no limit" (about 1e30).</summary>
    public int? ModelMaxLength { get; init; }

    /// <summary>Reads <paramref name="configPath"/> and, beside it, <c>special_tokens_map.json</c> (which fills tokens the config lacks).</summary>
    /// <exception cref="TokenizerFileException">A file is not valid JSON or has a value of the wrong kind.</exception>
    public static TokenizerSettings Read(string? configPath, string? specialTokensMapPath = null)
    {
        var settings = new TokenizerSettings();
        if (specialTokensMapPath is not null && File.Exists(specialTokensMapPath)) settings = Apply(settings, specialTokensMapPath);
        if (configPath is not null && File.Exists(configPath)) settings = Apply(settings, configPath);
        return settings;
    }

    private static TokenizerSettings Apply(TokenizerSettings settings, string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            var root = document.RootElement;
            return settings with
            {
                BosToken = Token(root, "bos_token") ?? settings.BosToken,
                EosToken = Token(root, "eos_token") ?? settings.EosToken,
                UnkToken = Token(root, "unk_token") ?? settings.UnkToken,
                PadToken = Token(root, "pad_token") ?? settings.PadToken,
                SepToken = Token(root, "sep_token") ?? settings.SepToken,
                ClsToken = Token(root, "cls_token") ?? settings.ClsToken,
                MaskToken = Token(root, "mask_token") ?? settings.MaskToken,
                PaddingSide = SideOf(root, "padding_side") ?? settings.PaddingSide,
                TruncationSide = SideOf(root, "truncation_side") ?? settings.TruncationSide,
                ModelMaxLength = root.TryGetProperty("model_max_length", out var max) && max.ValueKind == JsonValueKind.Number
                    ? max.GetDouble() is var value && value >= 1 && value < int.MaxValue ? (int)value : null
                    : settings.ModelMaxLength,
            };
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new TokenizerFileException(path, e.Message, e);
        }
    }

    /// <summary>A special token written as a string or as an <c>AddedToken</c> object with <c>content</c>.</summary>
    private static string? Token(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) => content.GetString(),
            JsonValueKind.Null => null,
            _ => throw new FormatException($"'{name}' is neither a string nor an object with \"content\"."),
        };
    }

    private static Side? SideOf(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.GetString() switch
        {
            "right" => Side.Right,
            "left" => Side.Left,
            var other => throw new FormatException($"'{name}' is '{other}'; transformers takes \"right\" or \"left\"."),
        };
}
