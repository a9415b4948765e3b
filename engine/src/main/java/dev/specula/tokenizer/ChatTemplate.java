package dev.specula.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.exptest.ExpTest;
import com.hubspot.jinjava.lib.filter.Filter;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import org.jspecify.annotations.Nullable;

/**
 * A Hugging Face chat template rendered with Jinjava set up to match transformers'
 * rendering: {@code trim_blocks} and {@code lstrip_blocks} on, whitespace control parsed
 * strictly, and the globals transformers provides ({@code raise_exception},
 * {@code strftime_now}, a Python-style {@code tojson}). Checked against strings rendered
 * by transformers in the tests.
 */
public final class ChatTemplate {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final String source;

    private final String bosToken;

    private final String eosToken;

    private final Jinjava jinjava;

    ChatTemplate(String source, @Nullable String bosToken, @Nullable String eosToken) {
        this.source = withJinjaPrecedence(source);
        this.bosToken = bosToken == null ? "" : bosToken;
        this.eosToken = eosToken == null ? "" : eosToken;
        this.jinjava = newJinjava();
    }

    /**
     * The model's template: {@code chat_template.jinja} if present, else
     * {@code chat_template} in {@code tokenizer_config.json}; empty when the model has
     * none. Internal to the engine: models load their own.
     */
    public static Optional<ChatTemplate> load(Optional<Path> tokenizerConfigFile, Optional<Path> chatTemplateFile) {
        JsonNode tokenizerConfig = tokenizerConfigFile.map(ChatTemplate::readJson).orElse(JSON.createObjectNode());
        String bos = tokenText(tokenizerConfig.path("bos_token"));
        String eos = tokenText(tokenizerConfig.path("eos_token"));
        if (chatTemplateFile.isPresent()) {
            Path file = chatTemplateFile.get();
            try {
                return Optional.of(new ChatTemplate(Files.readString(file), bos, eos));
            }
            catch (IOException ex) {
                throw new TokenizerLoadException(file, "Cannot read chat template " + file + ": " + ex.getMessage(),
                        ex);
            }
        }
        JsonNode template = tokenizerConfig.path("chat_template");
        if (template.isTextual()) {
            return Optional.of(new ChatTemplate(template.asText(), bos, eos));
        }
        // named templates: [{"name": "default", "template": "..."}, ...]
        if (template.isArray()) {
            for (JsonNode named : template) {
                if ("default".equals(named.path("name").asText())) {
                    return Optional.of(new ChatTemplate(named.path("template").asText(), bos, eos));
                }
            }
        }
        return Optional.empty();
    }

    /**
     * Renders {@code messages}; with {@code addGenerationPrompt} the text ends where the
     * assistant's reply begins.
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        return render(messages, addGenerationPrompt, Map.of());
    }

    /**
     * As {@link #render(List, boolean)} with extra template variables (e.g.
     * {@code tools}, {@code date_string}).
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt, Map<String, Object> extraVariables) {
        List<Map<String, @Nullable Object>> messageMaps = new ArrayList<>(messages.size());
        for (ChatMessage message : messages) {
            messageMaps.add(message.templateValue());
        }
        return renderMessages(messageMaps, addGenerationPrompt, extraVariables);
    }

    /**
     * Renders {@code messages} offering the model {@code tools}, as transformers'
     * {@code apply_chat_template(messages, tools=tools)}: the template receives them in
     * its {@code tools} variable (none when the list is empty, so templates render their
     * plain branch).
     */
    public String render(List<ChatMessage> messages, List<ChatTool> tools, boolean addGenerationPrompt) {
        if (tools.isEmpty()) {
            return render(messages, addGenerationPrompt);
        }
        List<Map<String, Object>> toolMaps = new ArrayList<>(tools.size());
        for (ChatTool tool : tools) {
            toolMaps.add(tool.templateValue());
        }
        return render(messages, addGenerationPrompt, Map.of("tools", toolMaps));
    }

    /**
     * Renders messages given as maps, which may carry more than role and content (e.g.
     * {@code tool_calls}), with extra template variables such as {@code tools}.
     */
    public String renderMessages(List<? extends Map<String, ? extends @Nullable Object>> messages,
            boolean addGenerationPrompt, Map<String, Object> extraVariables) {
        Map<String, Object> context = new LinkedHashMap<>(extraVariables);
        context.put("messages", messages);
        context.put("add_generation_prompt", addGenerationPrompt);
        context.put("bos_token", bosToken);
        context.put("eos_token", eosToken);
        RenderResult result = jinjava.renderForResult(source, context);
        for (TemplateError error : result.getErrors()) {
            if (error.getSeverity() == TemplateError.ErrorType.FATAL) {
                Throwable cause = error.getException();
                while (cause != null && !(cause instanceof TemplateRaisedException)) {
                    cause = cause.getCause();
                }
                if (cause != null) {
                    throw new ChatTemplateException(cause.getMessage());
                }
                throw new ChatTemplateException(
                        "Chat template failed at line " + error.getLineno() + ": " + error.getMessage());
            }
        }
        return result.getOutput();
    }

    /**
     * The template's Jinja source (with Jinja's {@code not ... is} precedence made
     * explicit).
     */
    public String source() {
        return source;
    }

    private static Jinjava newJinjava() {
        LegacyOverrides overrides = LegacyOverrides.newBuilder()
            .withParseWhitespaceControlStrictly(true)
            .withUseTrimmingForNotesAndExpressions(true)
            .withUseNaturalOperatorPrecedence(true)
            .withKeepNullableLoopValues(true)
            .withHandleBackslashInQuotesOnly(true)
            .withEvaluateMapKeys(true)
            .build();
        JinjavaConfig config = JinjavaConfig.newBuilder()
            .withTrimBlocks(true)
            .withLstripBlocks(true)
            .withLegacyOverrides(overrides)
            .withNestedInterpretationEnabled(false)
            .build();
        Jinjava jinjava = new Jinjava(config);
        jinjava.registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        jinjava.registerFunction(
                new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        jinjava.registerFilter(new ToJsonFilter());
        PythonStringMethods.filters().forEach(jinjava::registerFilter);
        jinjava.getGlobalContext().registerExpTest(new PythonIterableTest());
        return jinjava;
    }

    /** A tag: {@code {% ... %}} or {@code {{ ... }}}. */
    private static final Pattern TAG = Pattern.compile("\\{%.*?%}|\\{\\{.*?}}", Pattern.DOTALL);

    /**
     * {@code not x is [not] test} with a plain operand (name, attributes, subscripts).
     */
    private static final Pattern NOT_IS = Pattern
        .compile("\\bnot\\s+([A-Za-z_]\\w*(?:\\.[A-Za-z_]\\w*|\\[[^\\]]*])*)\\s+is\\s+(not\\s+)?([A-Za-z_]\\w*)");

    /**
     * {@code not x|filter == literal} (also {@code !=}, {@code <}, {@code >}, {@code <=},
     * {@code >=}) with a plain operand, filters without arguments and a number, string or
     * name on the right.
     */
    private static final Pattern NOT_COMPARISON = Pattern
        .compile("\\bnot\\s+([A-Za-z_]\\w*(?:\\.[A-Za-z_]\\w*|\\[[^\\]]*])*(?:\\s*\\|\\s*\\w+)*"
                + "\\s*(?:==|!=|<=|>=|<|>)\\s*(?:-?\\d+|'[^']*'|\"[^\"]*\"|[A-Za-z_]\\w*))");

    /** {@code x[::-1]} with a plain operand: Python's reversed copy (Qwen3). */
    private static final Pattern REVERSED = Pattern.compile("([A-Za-z_]\\w*(?:\\.[A-Za-z_]\\w*)*)\\[::-1]");

    /**
     * {@code namespace(a=x|length - 1)}: Jinjava binds {@code a=x|length} first and
     * subtracts from the named parameter (Qwen3); each value is put in parentheses.
     */
    static String namespaceArgumentsGrouped(String tag) {
        int call = tag.indexOf("namespace(");
        if (call < 0) {
            return tag;
        }
        int open = call + "namespace(".length();
        StringBuilder out = new StringBuilder(tag.substring(0, open));
        int depth = 0;
        char quote = 0;
        int argumentStart = open;
        int i = open;
        for (; i < tag.length(); i++) {
            char c = tag.charAt(i);
            if (quote != 0) {
                quote = c == quote ? 0 : quote;
            }
            else if (c == '\'' || c == '"') {
                quote = c;
            }
            else if (c == '(' || c == '[' || c == '{') {
                depth++;
            }
            else if ((c == ')' || c == ']' || c == '}') && depth > 0) {
                depth--;
            }
            else if (depth == 0 && (c == ',' || c == ')')) {
                out.append(grouped(tag.substring(argumentStart, i))).append(c);
                argumentStart = i + 1;
                if (c == ')') {
                    break;
                }
            }
        }
        if (i >= tag.length()) {
            return tag; // unbalanced: left to Jinjava to report
        }
        return out.append(namespaceArgumentsGrouped(tag.substring(i + 1))).toString();
    }

    /** {@code name=value} as {@code name=(value)}; anything else as it is. */
    private static String grouped(String argument) {
        Matcher named = Pattern.compile("^(\\s*[A-Za-z_]\\w*\\s*=)(?!=)(.+)$", Pattern.DOTALL).matcher(argument);
        return named.matches() ? named.group(1) + "(" + named.group(2).strip() + ")" : argument;
    }

    /**
     * In Jinja2 {@code is} binds tighter than {@code not}: {@code not tools is defined}
     * means {@code not (tools is defined)}. Jinjava reads {@code (not tools) is defined},
     * which Llama 3.1+ templates trip over; the parentheses are made explicit inside
     * tags. Likewise comparisons bind tighter than {@code not}: Llama 3.1+'s
     * {@code not message.tool_calls|length == 1} means {@code not (... == 1)}.
     */
    static String withJinjaPrecedence(String template) {
        Matcher tags = TAG.matcher(template);
        StringBuilder out = new StringBuilder();
        while (tags.find()) {
            String fixed = NOT_IS.matcher(tags.group()).replaceAll("not ($1 is $2$3)");
            fixed = NOT_COMPARISON.matcher(fixed).replaceAll("not ($1)");
            fixed = REVERSED.matcher(fixed).replaceAll("($1|reverse)");
            fixed = namespaceArgumentsGrouped(fixed);
            fixed = PythonStringMethods.rewrite(fixed);
            tags.appendReplacement(out, Matcher.quoteReplacement(fixed));
        }
        tags.appendTail(out);
        return out.toString();
    }

    /**
     * {@code raise_exception(message)}: the template rejects the conversation. Public
     * only for Jinjava to call.
     */
    public static String raiseException(String message) {
        throw new TemplateRaisedException(message);
    }

    /**
     * {@code strftime_now(format)} for the common Python directives used by templates
     * (Llama 3.1+). Public only for Jinjava to call.
     */
    public static String strftimeNow(String pythonFormat) {
        String javaPattern = pythonFormat.replace("%d", "dd")
            .replace("%b", "MMM")
            .replace("%B", "MMMM")
            .replace("%Y", "yyyy")
            .replace("%m", "MM")
            .replace("%H", "HH")
            .replace("%M", "mm")
            .replace("%S", "ss");
        return LocalDateTime.now().format(DateTimeFormatter.ofPattern(javaPattern, java.util.Locale.ENGLISH));
    }

    private static String tokenText(JsonNode token) {
        if (token.isTextual()) {
            return token.asText();
        }
        if (token.isObject()) { // {"content": "<s>", "__type": "AddedToken", ...}
            return token.path("content").asText("");
        }
        return "";
    }

    private static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        }
        catch (IOException ex) {
            throw new TokenizerLoadException(file, "Cannot parse " + file + " as JSON: " + ex.getMessage(), ex);
        }
    }

    /** Thrown by {@code raise_exception} inside a template. */
    static final class TemplateRaisedException extends RuntimeException {

        TemplateRaisedException(String message) {
            super(message);
        }

    }

    /**
     * Jinja2's {@code is iterable}: strings are iterable too (Llama 3.1+ templates send a
     * tool's text answer through {@code tojson} because of it).
     */
    static final class PythonIterableTest implements ExpTest {

        @Override
        public String getName() {
            return "iterable";
        }

        @Override
        public boolean evaluate(@Nullable Object value, JinjavaInterpreter interpreter, @Nullable Object... args) {
            return value instanceof CharSequence || value instanceof Iterable<?> || value instanceof Map<?, ?>
                    || (value != null && value.getClass().isArray());
        }

    }

    /**
     * Python's {@code json.dumps(x, ensure_ascii=False, indent=...)}, as transformers'
     * {@code tojson}.
     */
    static final class ToJsonFilter implements Filter {

        @Override
        public String getName() {
            return "tojson";
        }

        @Override
        public Object filter(@Nullable Object value, JinjavaInterpreter interpreter, @Nullable String... args) {
            return PythonJson.dumps(value, args.length > 0 && args[0] != null ? Integer.valueOf(args[0]) : null);
        }

        @Override
        public Object filter(@Nullable Object value, JinjavaInterpreter interpreter, @Nullable Object[] args,
                Map<String, @Nullable Object> kwargs) {
            Object indent = kwargs.getOrDefault("indent", args.length > 0 ? args[0] : null);
            return PythonJson.dumps(value, indent == null ? null
                    : ((Number) (indent instanceof String s ? Integer.valueOf(s) : indent)).intValue());
        }

    }

}
