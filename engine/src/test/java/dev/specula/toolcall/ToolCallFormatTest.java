package dev.specula.toolcall;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import dev.specula.Fixtures;
import dev.specula.tokenizer.ChatTemplate;
import dev.specula.tokenizer.ToolCall;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * The three call formats on outputs written as their models write them: one call,
 * parallel calls, text around calls, malformed markup (text, never an error), and the
 * stream filter fed the output split at every character boundary.
 */
class ToolCallFormatTest {

    private static final String PARIS = "{\"city\":\"Paris\",\"unit\":\"celsius\"}";

    private static final String TOKYO = "{\"city\":\"Tokyo\"}";

    @Test
    void theFormatIsDetectedFromReleasedTemplates(@TempDir Path directory) throws IOException {
        assertThat(detect(directory, "qwen2.5-instruct/tools")).contains(ToolCallFormat.HERMES);
        assertThat(detect(directory, "llama-3.3-instruct/tools")).contains(ToolCallFormat.LLAMA3_JSON);
        assertThat(detect(directory, "llama-3.2-instruct/tools-user")).contains(ToolCallFormat.LLAMA3_JSON);
        assertThat(detect(directory, "mistral-nemo-instruct-2407/tools-user")).contains(ToolCallFormat.MISTRAL);
        assertThat(detect(directory, "llama-3-instruct/user-only")).isEmpty();
        assertThat(detect(directory, "mixtral-8x7b-instruct-v0.1/user-only")).isEmpty();
        assertThat(detect(directory, "smollm2-instruct/user-only")).isEmpty();
    }

    @Test
    void eachFormatDescribesItsSyntaxForAGrammar() {
        assertThat(ToolCallFormat.HERMES.syntax())
            .isEqualTo(new ToolCallSyntax("<tool_call>\n", "\n</tool_call>", "\n", "arguments", false));
        assertThat(ToolCallFormat.LLAMA3_JSON.syntax()).isEqualTo(new ToolCallSyntax("", "", ";", "parameters", false));
        assertThat(ToolCallFormat.MISTRAL.syntax())
            .isEqualTo(new ToolCallSyntax("[TOOL_CALLS]", "", ", ", "arguments", true));
    }

    @Test
    void hermesCallsAreReadWithTheTextAroundThem() {
        ParsedOutput one = ToolCallFormat.HERMES.parse(
                "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>");
        assertThat(one.content()).isEmpty();
        assertCalls(one, "get_weather", PARIS);
        assertThat(one.toolCalls().get(0).id()).matches("call_[A-Za-z0-9]{24}");

        ParsedOutput parallel = ToolCallFormat.HERMES.parse("Let me check both.\n<tool_call>\n"
                + "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\n"
                + "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call>\nDone.");
        assertThat(parallel.content()).isEqualTo("Let me check both.\nDone.");
        assertCalls(parallel, "get_weather", PARIS, "get_time", TOKYO);
        assertThat(parallel.toolCalls().get(0).id()).isNotEqualTo(parallel.toolCalls().get(1).id());

        // arguments given as a string holding an object; a last call without its closing
        // tag
        ParsedOutput lenient = ToolCallFormat.HERMES
            .parse("<tool_call>\n{\"name\": \"get_time\", \"arguments\": \"{\\\"city\\\": \\\"Tokyo\\\"}\"}\n");
        assertCalls(lenient, "get_time", TOKYO);
    }

    @Test
    void malformedHermesMarkupStaysText() {
        String unclosedJson = "Sure <tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": ";
        assertThat(ToolCallFormat.HERMES.parse(unclosedJson))
            .isEqualTo(new ParsedOutput(unclosedJson.strip(), List.of()));
        String noName = "<tool_call>{\"arguments\": {}}</tool_call>";
        assertThat(ToolCallFormat.HERMES.parse(noName).content()).isEqualTo(noName);
        String notJson = "I would write <tool_call>name(x)</tool_call> here";
        assertThat(ToolCallFormat.HERMES.parse(notJson)).isEqualTo(new ParsedOutput(notJson, List.of()));

        // a bad call, then a good one: the bad one stays text
        ParsedOutput mixed = ToolCallFormat.HERMES
            .parse("<tool_call>oops</tool_call> then <tool_call>{\"name\": \"get_time\", \"arguments\": " + TOKYO
                    + "}</tool_call>");
        assertThat(mixed.content()).isEqualTo("<tool_call>oops</tool_call> then");
        assertCalls(mixed, "get_time", TOKYO);
    }

    @Test
    void llamaCallsAreJsonObjectsWithParameters() {
        ParsedOutput one = ToolCallFormat.LLAMA3_JSON
            .parse("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}");
        assertThat(one.content()).isEmpty();
        assertCalls(one, "get_weather", PARIS);

        ParsedOutput tagged = ToolCallFormat.LLAMA3_JSON
            .parse("<|python_tag|>{\"name\": \"get_time\", \"parameters\": {\"city\": \"Tokyo\"}}");
        assertCalls(tagged, "get_time", TOKYO);

        ParsedOutput parallel = ToolCallFormat.LLAMA3_JSON.parse("{\"name\": \"get_weather\", \"parameters\": " + PARIS
                + "}; {\"name\": \"get_time\", " + "\"parameters\": " + TOKYO + "}\n");
        assertCalls(parallel, "get_weather", PARIS, "get_time", TOKYO);
        ParsedOutput lines = ToolCallFormat.LLAMA3_JSON.parse("{\"name\": \"get_weather\", \"parameters\": " + PARIS
                + "}\n{\"name\": \"get_time\", " + "\"parameters\": " + TOKYO + "}");
        assertCalls(lines, "get_weather", PARIS, "get_time", TOKYO);

        ParsedOutput textBefore = ToolCallFormat.LLAMA3_JSON
            .parse("Checking.<|python_tag|>{\"name\": \"get_time\", \"parameters\": " + TOKYO + "}");
        assertThat(textBefore.content()).isEqualTo("Checking.");
        assertCalls(textBefore, "get_time", TOKYO);
    }

    @Test
    void llamaCallsBeforeOneCutOffByTheTokenLimitAreKept() {
        // a model that keeps calling runs out of tokens inside a call: the complete ones
        // were written and are its calls
        ParsedOutput cut = ToolCallFormat.LLAMA3_JSON.parse("{\"name\": \"get_weather\", \"parameters\": " + PARIS
                + "}; {\"name\": \"get_time\", \"parameters\": {\"city\": \"Tok");
        assertCalls(cut, "get_weather", PARIS);
        ParsedOutput hermesCut = ToolCallFormat.HERMES.parse("<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
                + PARIS + "}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"argu");
        assertThat(hermesCut.toolCalls()).extracting(dev.specula.tokenizer.ToolCall::name)
            .containsExactly("get_weather");
    }

    @Test
    void llamaTextAndJsonThatIsNotACallStayText() {
        for (String text : List.of("The answer is {\"name\": \"x\", \"parameters\": {}}", "{\"name\": \"get_time\"}",
                "{\"title\": \"a JSON answer\"}",
                "{\"name\": \"get_time\", \"parameters\": {\"city\": \"Tokyo\"}} and some words",
                "{\"name\": \"get_time\", \"parameters\": {\"city\": ")) {
            assertThat(ToolCallFormat.LLAMA3_JSON.parse(text)).as(text)
                .isEqualTo(new ParsedOutput(text.strip(), List.of()));
        }
    }

    @Test
    void mistralCallsAreAJsonArrayAfterTheMarkerWithTheirIds() {
        ParsedOutput parallel = ToolCallFormat.MISTRAL
            .parse("[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
                    + "\"celsius\"}, \"id\": \"call0a1b2\"}, {\"name\": \"get_time\", \"arguments\": "
                    + "{\"city\": \"Tokyo\"}, \"id\": \"call3c4d5\"}]");
        assertThat(parallel.content()).isEmpty();
        assertCalls(parallel, "get_weather", PARIS, "get_time", TOKYO);
        assertThat(parallel.toolCalls()).extracting(ToolCall::id).containsExactly("call0a1b2", "call3c4d5");

        ParsedOutput withoutId = ToolCallFormat.MISTRAL
            .parse("Let me see. [TOOL_CALLS] [{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}]");
        assertThat(withoutId.content()).isEqualTo("Let me see.");
        assertCalls(withoutId, "get_time", TOKYO);
        assertThat(withoutId.toolCalls().get(0).id()).matches("[A-Za-z0-9]{9}");
    }

    @Test
    void malformedMistralMarkupStaysText() {
        for (String text : List.of("[TOOL_CALLS]", "[TOOL_CALLS] get_time(Tokyo)", "[TOOL_CALLS][]",
                "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": {\"city\": ", "[TOOL_CALLS][{\"city\": 1}]",
                "[TOOL_CALLS][{\"name\": \"get_time\", \"arguments\": [1]}]")) {
            assertThat(ToolCallFormat.MISTRAL.parse(text)).as(text)
                .isEqualTo(new ParsedOutput(text.strip(), List.of()));
        }
    }

    static List<Arguments> outputs() {
        String hermesCall = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", "
                + "\"unit\": \"celsius\"}}\n</tool_call>";
        String hermesTime = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call>";
        String llamaCall = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"unit\": \"celsius\"}}";
        String mistral = "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": "
                + "\"celsius\"}, \"id\": \"call0a1b2\"}, {\"name\": \"get_time\", \"arguments\": {\"city\": "
                + "\"Tokyo\"}, \"id\": \"call3c4d5\"}]";
        List<Arguments> outputs = new ArrayList<>();
        for (String hermes : List.of(hermesCall, "\n" + hermesCall + "\n" + hermesTime,
                "I'll check: <b>Paris</b> 🙂\n" + hermesCall + "\n" + hermesTime + "\nThen answer.",
                "No tools needed. A tag < like <tool this stays.\n\n",
                "Broken <tool_call>\n{\"name\": 1}\n</tool_call> x", "Unclosed " + hermesCall.substring(0, 30))) {
            outputs.add(Arguments.of(ToolCallFormat.HERMES, hermes));
        }
        for (String llama : List.of(llamaCall, "  \n" + llamaCall + ";\n" + llamaCall.replace("Paris", "Lyon"),
                "Let me look.<|python_tag|>" + llamaCall, "Plain answer with { braces } and <|py not a tag.",
                "{\"title\": \"not a call\"}", "{\"name\": \"x\", \"parameters\": ")) {
            outputs.add(Arguments.of(ToolCallFormat.LLAMA3_JSON, llama));
        }
        for (String text : List.of(mistral, "Let me see. " + mistral + " ok", "Text with [TOOL but no calls ",
                "[TOOL_CALLS][{\"name\": ")) {
            outputs.add(Arguments.of(ToolCallFormat.MISTRAL, text));
        }
        return outputs;
    }

    @ParameterizedTest(name = "{0}: {1}")
    @MethodSource("outputs")
    void aStreamSplitAtAnyBoundaryEmitsWhatTheParseFindsAndNoMarkup(ToolCallFormat format, String output) {
        ParsedOutput whole = format.parse(output);
        // one piece per character, and two pieces split at every boundary
        List<List<String>> splits = new ArrayList<>();
        List<String> characters = new ArrayList<>();
        output.codePoints().forEach((c) -> characters.add(new String(Character.toChars(c))));
        splits.add(characters);
        for (int i = 0; i <= output.length(); i++) {
            splits.add(List.of(output.substring(0, i), output.substring(i)));
        }
        for (List<String> pieces : splits) {
            ToolCallStreamFilter filter = format.streamFilter();
            StringBuilder shown = new StringBuilder();
            for (String piece : pieces) {
                shown.append(filter.accept(piece));
            }
            String beforeFinish = shown.toString();
            ParsedOutput rest = filter.finish();
            shown.append(rest.content());
            assertThat(shown.toString()).as("text of %s", pieces).isEqualTo(whole.content());
            assertThat(rest.toolCalls()).extracting(ToolCall::name, ToolCall::arguments)
                .as("calls of %s", pieces)
                .isEqualTo(whole.toolCalls()
                    .stream()
                    .map((c) -> org.assertj.core.groups.Tuple.tuple(c.name(), c.arguments()))
                    .toList());
            if (whole.hasToolCalls()) {
                assertThat(beforeFinish).doesNotContain("<tool_call", "[TOOL_CALLS", "\"name\"", "<|python_tag");
            }
        }
    }

    @Test
    void mistralIdsSurviveStreaming() {
        ToolCallStreamFilter filter = ToolCallFormat.MISTRAL.streamFilter();
        assertThat(filter.accept("[TOOL_CALLS][{\"name\": \"get_time\", ")).isEmpty();
        assertThat(filter.accept("\"arguments\": {\"city\": \"Tokyo\"}, \"id\": \"abcDEF123\"}]")).isEmpty();
        assertThat(filter.finish().toolCalls()).containsExactly(new ToolCall("abcDEF123", "get_time", TOKYO));
    }

    @Test
    void textIsEmittedAsSoonAsItCannotStartACall() {
        ToolCallStreamFilter hermes = ToolCallFormat.HERMES.streamFilter();
        assertThat(hermes.accept("Hello <")).isEqualTo("Hello");
        assertThat(hermes.accept("b> world ")).isEqualTo(" <b> world");
        assertThat(hermes.accept("<tool_")).isEmpty();
        assertThat(hermes.accept("call>\n{\"name\": \"get_time\", \"arguments\": " + TOKYO + "}\n</tool_call>"))
            .isEmpty();
        ParsedOutput rest = hermes.finish();
        assertThat(rest.content()).isEmpty();
        assertCalls(rest, "get_time", TOKYO);

        ToolCallStreamFilter llama = ToolCallFormat.LLAMA3_JSON.streamFilter();
        assertThat(llama.accept(" {")).isEmpty();
        assertThat(llama.accept("\"a\": 1} is JSON")).isEmpty();
        assertThat(llama.finish().content()).isEqualTo("{\"a\": 1} is JSON");
    }

    private static Optional<ToolCallFormat> detect(Path directory, String caseName) throws IOException {
        for (JsonNode testCase : Fixtures.json(Fixtures.path("chat-templates.json"))) {
            if (testCase.path("name").asText().equals(caseName)) {
                Path file = Files.writeString(directory.resolve(caseName.replace('/', '-') + ".jinja"),
                        testCase.path("template").asText());
                return ToolCallFormat.detect(ChatTemplate.load(Optional.empty(), Optional.of(file)).orElseThrow());
            }
        }
        throw new AssertionError("no fixture case " + caseName);
    }

    private static void assertCalls(ParsedOutput parsed, String... namesAndArguments) {
        List<String> flat = new ArrayList<>();
        for (ToolCall call : parsed.toolCalls()) {
            flat.add(call.name());
            flat.add(call.arguments());
        }
        assertThat(flat).containsExactly(namesAndArguments);
    }

}
