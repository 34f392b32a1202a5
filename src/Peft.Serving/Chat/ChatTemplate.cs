using System.Text;
using System.Text.Json;

namespace Peft.Serving.Chat;

/// <summary>
/// Turns chat messages into a prompt the way a model's <c>chat_template</c> (tokenizer_config.json) does. No
/// maintained Jinja engine for .NET is available here, so the template is recognised by its markers and rendered
/// by code for the common families: ChatML (Qwen, many fine-tunes: <c>&lt;|im_start|&gt;</c>), Llama 3
/// (<c>&lt;|start_header_id|&gt;</c>), Llama 2 / Mistral (<c>[INST]</c>), Zephyr (<c>&lt;|user|&gt;</c>) and Gemma
/// (<c>&lt;start_of_turn&gt;</c>). Any other template is refused when the template is read, naming these.
/// </summary>
public sealed class ChatTemplate
{
    private readonly Func<IReadOnlyList<ChatTurn>, string> _render;

    private ChatTemplate(ChatTemplateFamily family, string bos, string eos, Func<ChatTemplate, IReadOnlyList<ChatTurn>, string> render)
    {
        Family = family;
        BosToken = bos;
        EosToken = eos;
        _render = turns => render(this, turns);
    }

    /// <summary>The family recognised.</summary>
    public ChatTemplateFamily Family { get; }

    /// <summary>The tokenizer's beginning-of-sequence token as the template writes it ("" when none).</summary>
    public string BosToken { get; }

    /// <summary>The tokenizer's end-of-sequence token as the template writes it ("" when none).</summary>
    public string EosToken { get; }

    /// <summary>The prompt for <paramref name="turns"/>, ending with the assistant's header (add_generation_prompt=True).</summary>
    /// <exception cref="ArgumentException">A role the family cannot write (named).</exception>
    public string Render(IReadOnlyList<ChatTurn> turns)
    {
        foreach (var turn in turns)
        {
            if (turn.Role is not ("system" or "user" or "assistant")) throw new ArgumentException($"Chat role '{turn.Role}' is not supported (system, user, assistant).", nameof(turns));
        }
        return _render(turns);
    }

    /// <summary>The template of a family, with the given special tokens.</summary>
    public static ChatTemplate For(ChatTemplateFamily family, string bosToken = "", string eosToken = "") => family switch
    {
        ChatTemplateFamily.ChatMl => new(family, bosToken, eosToken, static (_, turns) => ChatMl(turns)),
        ChatTemplateFamily.Llama3 => new(family, bosToken, eosToken, static (t, turns) => Llama3(t, turns)),
        ChatTemplateFamily.Llama2 => new(family, bosToken, eosToken, static (t, turns) => Llama2(t, turns)),
        ChatTemplateFamily.Zephyr => new(family, bosToken, eosToken, static (t, turns) => Zephyr(t, turns)),
        ChatTemplateFamily.Gemma => new(family, bosToken, eosToken, static (t, turns) => Gemma(t, turns)),
        _ => throw new ArgumentOutOfRangeException(nameof(family), family, null),
    };

    /// <summary>Recognises the family of a Jinja <c>chat_template</c> string by its markers.</summary>
    /// <exception cref="NotSupportedException">No supported family's markers are in it.</exception>
    public static ChatTemplate Parse(string template, string bosToken = "", string eosToken = "")
    {
        var family = template switch
        {
            _ when template.Contains("<|im_start|>", StringComparison.Ordinal) => ChatTemplateFamily.ChatMl,
            _ when template.Contains("<|start_header_id|>", StringComparison.Ordinal) => ChatTemplateFamily.Llama3,
            _ when template.Contains("<start_of_turn>", StringComparison.Ordinal) => ChatTemplateFamily.Gemma,
            _ when template.Contains("<|user|>", StringComparison.Ordinal) => ChatTemplateFamily.Zephyr,
            _ when template.Contains("[INST]", StringComparison.Ordinal) => ChatTemplateFamily.Llama2,
            _ => throw new NotSupportedException(
                "The model's chat_template is none of the families this library renders (ChatML, Llama 3, Llama 2/Mistral [INST], Zephyr, Gemma); " +
                "no Jinja engine is used. Send prompts to /v1/completions, or name a family with --chat-template."),
        };
        return For(family, bosToken, eosToken);
    }

    /// <summary>
    /// The template of a model directory: tokenizer_config.json's <c>chat_template</c> (a string, or a list whose
    /// entry named "default" is taken), with its bos/eos tokens; null when the file has none.
    /// </summary>
    public static ChatTemplate? FromDirectory(string directory)
    {
        var path = Path.Combine(directory, "tokenizer_config.json");
        if (!File.Exists(path)) return null;
        using var document = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = document.RootElement;
        if (!root.TryGetProperty("chat_template", out var template)) return null;
        var text = template.ValueKind switch
        {
            JsonValueKind.String => template.GetString(),
            JsonValueKind.Array => template.EnumerateArray().FirstOrDefault(e => e.TryGetProperty("name", out var n) && n.GetString() == "default") is { ValueKind: JsonValueKind.Object } d
                ? d.GetProperty("template").GetString() : null,
            _ => null,
        };
        return text is null ? null : Parse(text, Token(root, "bos_token"), Token(root, "eos_token"));
    }

    private static string Token(JsonElement root, string name) =>
        !root.TryGetProperty(name, out var value) ? ""
        : value.ValueKind == JsonValueKind.String ? value.GetString() ?? ""
        : value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out var content) ? content.GetString() ?? ""
        : "";

    private static string ChatMl(IReadOnlyList<ChatTurn> turns)
    {
        var text = new StringBuilder();
        foreach (var turn in turns) text.Append("<|im_start|>").Append(turn.Role).Append('\n').Append(turn.Content).Append("<|im_end|>\n");
        return text.Append("<|im_start|>assistant\n").ToString();
    }

    private static string Llama3(ChatTemplate t, IReadOnlyList<ChatTurn> turns)
    {
        var text = new StringBuilder(t.BosToken);
        foreach (var turn in turns) text.Append("<|start_header_id|>").Append(turn.Role).Append("<|end_header_id|>\n\n").Append(turn.Content.Trim()).Append("<|eot_id|>");
        return text.Append("<|start_header_id|>assistant<|end_header_id|>\n\n").ToString();
    }

    /// <summary>Llama 2's template: a system message goes inside the first [INST] block, between &lt;&lt;SYS&gt;&gt; markers.</summary>
    private static string Llama2(ChatTemplate t, IReadOnlyList<ChatTurn> turns)
    {
        var text = new StringBuilder();
        var system = turns.Count > 0 && turns[0].Role == "system" ? turns[0].Content : null;
        var first = true;
        foreach (var turn in turns.Skip(system is null ? 0 : 1))
        {
            if (turn.Role == "user")
            {
                var content = first && system is not null ? $"<<SYS>>\n{system}\n<</SYS>>\n\n{turn.Content}" : turn.Content;
                text.Append(t.BosToken).Append("[INST] ").Append(content.Trim()).Append(" [/INST]");
                first = false;
            }
            else if (turn.Role == "assistant")
            {
                text.Append(' ').Append(turn.Content.Trim()).Append(' ').Append(t.EosToken);
            }
            else
            {
                throw new ArgumentException("Llama 2's template takes a system message only first.", nameof(turns));
            }
        }
        return text.ToString();
    }

    private static string Zephyr(ChatTemplate t, IReadOnlyList<ChatTurn> turns)
    {
        var text = new StringBuilder();
        foreach (var turn in turns) text.Append("<|").Append(turn.Role).Append("|>\n").Append(turn.Content).Append(t.EosToken).Append('\n');
        return text.Append("<|assistant|>\n").ToString();
    }

    /// <summary>Gemma has no system role: its template puts a system message in front of the first user turn.</summary>
    private static string Gemma(ChatTemplate t, IReadOnlyList<ChatTurn> turns)
    {
        var text = new StringBuilder(t.BosToken);
        var system = turns.Count > 0 && turns[0].Role == "system" ? turns[0].Content + "\n\n" : "";
        foreach (var turn in turns.Skip(system.Length > 0 ? 1 : 0))
        {
            var role = turn.Role == "assistant" ? "model" : turn.Role;
            if (role == "system") throw new ArgumentException("Gemma's template takes a system message only first.", nameof(turns));
            text.Append("<start_of_turn>").Append(role).Append('\n').Append(system).Append(turn.Content.Trim()).Append("<end_of_turn>\n");
            system = "";
        }
        return text.Append("<start_of_turn>model\n").ToString();
    }
}

/// <summary>The chat template families <see cref="ChatTemplate"/> renders.</summary>
public enum ChatTemplateFamily
{
    /// <summary><c>&lt;|im_start|&gt;role\ncontent&lt;|im_end|&gt;</c> (Qwen, OpenHermes, many fine-tunes).</summary>
    ChatMl,

    /// <summary>Llama 3's header and <c>&lt;|eot_id|&gt;</c> turns.</summary>
    Llama3,

    /// <summary>Llama 2 and Mistral: <c>[INST] … [/INST]</c>.</summary>
    Llama2,

    /// <summary><c>&lt;|user|&gt;</c> / <c>&lt;|assistant|&gt;</c> turns closed by the eos token (Zephyr, TinyLlama chat).</summary>
    Zephyr,

    /// <summary><c>&lt;start_of_turn&gt;user</c> / <c>model</c> (Gemma).</summary>
    Gemma,
}

/// <summary>One message: its role (system, user, assistant) and text.</summary>
/// <param name="Role">system, user or assistant.</param>
/// <param name="Content">The text.</param>
public sealed record ChatTurn(string Role, string Content);
