package dev.specula.sample;

import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.ai.chat.messages.AssistantMessage;
import org.springframework.ai.chat.messages.SystemMessage;
import org.springframework.ai.chat.messages.UserMessage;
import tools.jackson.databind.json.JsonMapper;

import dev.specula.chat.SpeculaChatOptions;
import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Reading OpenAI's request JSON: what is accepted, and which field each mistake is
 * reported against.
 */
class ChatCompletionRequestTest {

    private static final String MODEL = "specula-tiny";

    private static final JsonMapper JSON = JsonMapper.builder().build();

    private static final String HELLO = "\"messages\": [{\"role\": \"user\", \"content\": \"hello\"}]";

    @Test
    void readsTheProposerGriffin() {
        ChatCompletionRequest request = read("{%s, \"speculation\": {\"proposer\": \"griffin\"}}".formatted(HELLO));
        assertThat(request.options().getProposer()).isEqualTo("griffin");
    }

    @Test
    void readsEveryOptionIntoSpeculaChatOptions() {
        ChatCompletionRequest request = read("""
                {"model": "specula-tiny", %s, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_tokens": 12,
                 "seed": 42, "stop": ["\\n\\n", "def "], "n": 1, "frequency_penalty": 0.5, "presence_penalty": -0.25,
                 "repetition_penalty": 1.1, "logit_bias": {"13": -100, "7": 2.5}, "logprobs": true, "top_logprobs": 4,
                 "user": "someone", "metadata": {"a": "b"}, "store": false, "modalities": ["text"],
                 "stream": true, "stream_options": {"include_usage": true},
                 "speculation": {"policy": "fixed", "gamma": 3, "enabled": true, "proposer": "model+ngram",
                                 "provenance": true}}""".formatted(HELLO));

        SpeculaChatOptions options = request.options();
        assertThat(options.getModel()).isEqualTo(MODEL);
        assertThat(options.getTemperature()).isEqualTo(0.7);
        assertThat(options.getTopP()).isEqualTo(0.9);
        assertThat(options.getTopK()).isEqualTo(40);
        assertThat(options.getMaxTokens()).isEqualTo(12);
        assertThat(options.getSeed()).isEqualTo(42L);
        assertThat(options.getStopSequences()).containsExactly("\n\n", "def ");
        assertThat(options.getPolicy()).isEqualTo("fixed");
        assertThat(options.getGamma()).isEqualTo(3);
        assertThat(options.getSpeculation()).isTrue();
        assertThat(options.getProposer()).isEqualTo("model+ngram");
        assertThat(options.getProvenance()).isTrue();
        assertThat(options.getPrediction()).isNull();
        assertThat(options.getFrequencyPenalty()).isEqualTo(0.5);
        assertThat(options.getPresencePenalty()).isEqualTo(-0.25);
        assertThat(options.getRepetitionPenalty()).isEqualTo(1.1);
        assertThat(options.getLogitBias()).containsExactlyInAnyOrderEntriesOf(java.util.Map.of(13, -100.0, 7, 2.5));
        assertThat(options.getLogprobs()).isTrue();
        assertThat(options.getTopLogprobs()).isEqualTo(4);
        assertThat(request.stream()).isTrue();
        assertThat(request.includeUsage()).isTrue();
    }

    @Test
    void readsAPredictionAsTextOrTextParts() {
        assertThat(read(
                "{%s, \"prediction\": {\"type\": \"content\", \"content\": \"def f():\\n    pass\"}}".formatted(HELLO))
            .options()
            .getPrediction()).isEqualTo("def f():\n    pass");
        assertThat(read(("{%s, \"prediction\": {\"type\": \"content\", \"content\": [{\"type\": \"text\", "
                + "\"text\": \"a\"}, {\"type\": \"text\", \"text\": \"b\"}]}}")
            .formatted(HELLO)).options().getPrediction()).isEqualTo("ab");
    }

    @Test
    void leavesUnsetOptionsNullSoTheModelDefaultsApply() {
        ChatCompletionRequest request = read("{%s}".formatted(HELLO));

        assertThat(request.options()).isEqualTo(SpeculaChatOptions.builder().build());
        assertThat(request.stream()).isFalse();
        assertThat(request.includeUsage()).isFalse();
    }

    @Test
    void mapsRolesToSpringAiMessagesAndJoinsTextParts() {
        ChatCompletionRequest request = read("""
                {"messages": [
                  {"role": "system", "content": "be brief"},
                  {"role": "developer", "content": "in Python"},
                  {"role": "user", "content": [{"type": "text", "text": "def "}, {"type": "text", "text": "fib"}]},
                  {"role": "assistant", "content": null, "name": "bot"},
                  {"role": "user", "content": "again"}]}""");

        assertThat(request.messages()).hasSize(5);
        assertThat(request.messages().get(0)).isInstanceOf(SystemMessage.class);
        assertThat(request.messages().get(1)).isInstanceOf(SystemMessage.class);
        assertThat(request.messages().get(2)).isInstanceOf(UserMessage.class);
        assertThat(request.messages().get(2).getText()).isEqualTo("def fib");
        assertThat(request.messages().get(3)).isInstanceOf(AssistantMessage.class);
        assertThat(request.messages().get(3).getText()).isEmpty();
        assertThat(request.prompt().getInstructions()).hasSize(5);
        assertThat(request.prompt().getOptions()).isSameAs(request.options());
    }

    @Test
    void acceptsAStopStringMaxCompletionTokensAndTopKMinusOne() {
        ChatCompletionRequest request = read("""
                {%s, "stop": "###", "max_tokens": 999, "max_completion_tokens": 7, "top_k": -1, "n": 1.0}"""
            .formatted(HELLO));

        assertThat(request.options().getStopSequences()).isEqualTo(List.of("###"));
        assertThat(request.options().getMaxTokens()).isEqualTo(7);
        assertThat(request.options().getTopK()).isZero();
    }

    @ParameterizedTest(name = "{0} -> param {1}")
    @CsvSource(delimiter = '|', value = { "\"messages\": []                                                 | messages",
            "\"messages\": \"hello\"                                          | messages",
            "\"model\": \"gpt-4o\", " + HELLO + "                             | model",
            HELLO + ", \"temperature\": -0.5                                  | temperature",
            HELLO + ", \"temperature\": \"hot\"                               | temperature",
            HELLO + ", \"top_p\": 0                                           | top_p",
            HELLO + ", \"top_p\": 1.5                                         | top_p",
            HELLO + ", \"top_k\": -2                                          | top_k",
            HELLO + ", \"n\": 2                                               | n",
            HELLO + ", \"n\": 0                                               | n",
            HELLO + ", \"max_tokens\": 0                                      | max_tokens",
            HELLO + ", \"max_tokens\": 1.5                                    | max_tokens",
            HELLO + ", \"max_completion_tokens\": -3                          | max_completion_tokens",
            HELLO + ", \"seed\": \"x\"                                        | seed",
            HELLO + ", \"stop\": [1]                                          | stop",
            HELLO + ", \"stop\": \"\"                                         | stop",
            HELLO + ", \"frequency_penalty\": 2.5                             | frequency_penalty",
            HELLO + ", \"presence_penalty\": -3                               | presence_penalty",
            HELLO + ", \"repetition_penalty\": 0                              | repetition_penalty",
            HELLO + ", \"logit_bias\": {\"hello\": 1}                         | logit_bias",
            HELLO + ", \"logit_bias\": {\"5\": 101}                           | logit_bias",
            HELLO + ", \"logit_bias\": [1]                                    | logit_bias",
            HELLO + ", \"logprobs\": 1                                        | logprobs",
            HELLO + ", \"top_logprobs\": 3                                    | top_logprobs",
            HELLO + ", \"logprobs\": true, \"top_logprobs\": 21               | top_logprobs",
            HELLO + ", \"functions\": []                                      | functions",
            HELLO + ", \"audio\": {}                                          | audio",
            HELLO + ", \"modalities\": [\"text\", \"audio\"]                  | modalities",
            HELLO + ", \"temperatur\": 0.5                                    | temperatur",
            HELLO + ", \"min_p\": 0.1                                         | min_p",
            HELLO + ", \"stream\": \"yes\"                                    | stream",
            HELLO + ", \"stream_options\": {\"include_usage\": 1}             | stream_options.include_usage",
            HELLO + ", \"speculation\": {\"policy\": \"no-such-policy\"}      | speculation.policy",
            HELLO + ", \"speculation\": {\"policy\": \"fixed:x\"}             | speculation.policy",
            HELLO + ", \"speculation\": {\"gamma\": 0}                        | speculation.gamma",
            HELLO + ", \"speculation\": {\"enabled\": \"no\"}                 | speculation.enabled",
            HELLO + ", \"speculation\": {\"proposer\": \"eagle\"}             | speculation.proposer",
            HELLO + ", \"speculation\": {\"proposer\": 3}                     | speculation.proposer",
            HELLO + ", \"speculation\": {\"provenance\": \"yes\"}           | speculation.provenance",
            HELLO + ", \"speculation\": {\"provenence\": true}                | speculation.provenence",
            HELLO + ", \"speculation\": {\"provenance\": true}, \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}] | speculation.provenance",
            HELLO + ", \"prediction\": \"text\"                               | prediction",
            HELLO + ", \"prediction\": {\"content\": \"x\"}                   | prediction.type",
            HELLO + ", \"prediction\": {\"type\": \"text\", \"content\": \"x\"} | prediction.type",
            HELLO + ", \"prediction\": {\"type\": \"content\", \"content\": 3} | prediction.content",
            HELLO + ", \"prediction\": {\"type\": \"content\", \"content\": \"\"} | prediction.content",
            HELLO + ", \"prediction\": {\"type\": \"content\", \"content\": [{\"type\": \"image_url\"}]} | prediction.content[0]",
            HELLO + ", \"speculation\": true                                  | speculation",
            "\"messages\": [{\"content\": \"hi\"}]                            | messages[0].role",
            "\"messages\": [{\"role\": \"bot\", \"content\": \"hi\"}]         | messages[0].role",
            "\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"tool\", \"content\": \"b\"}] | messages[1].tool_call_id",
            "\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"function\", \"content\": \"b\"}] | messages[1].role",
            "\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"tool\", \"tool_call_id\": \"x\", \"content\": \"b\"}] | messages[1].tool_call_id",
            HELLO + ", \"tools\": [{\"type\": \"function\"}]                | tools[0]",
            HELLO + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"a b\"}}] | tools[0].function.name",
            HELLO + ", \"tool_choice\": \"always\"                          | tool_choice",
            HELLO + ", \"tool_choice\": \"required\"                        | tool_choice",
            HELLO + ", \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\"}}], \"tool_choice\": {\"type\": \"function\", \"function\": {\"name\": \"g\"}} | tool_choice",
            HELLO + ", \"response_format\": {\"type\": \"xml\"}            | response_format.type",
            HELLO + ", \"response_format\": {\"type\": \"json_schema\"}    | response_format.json_schema",
            HELLO + ", \"response_format\": {\"type\": \"json_schema\", \"json_schema\": {\"name\": \"a\", \"schema\": {\"type\": \"integer\", \"minimum\": 0}}} | response_format.json_schema.schema",
            "\"messages\": [{\"role\": \"user\", \"content\": 3}]             | messages[0].content",
            "\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}] | messages[0].content[0]",
            "\"messages\": [\"hello\"]                                        | messages[0]" })
    void namesTheFieldOfEveryMistake(String fields, String param) {
        assertThatThrownBy(() -> read("{" + fields + "}")).isInstanceOfSatisfying(InvalidRequestException.class,
                (ex) -> {
                    assertThat(ex.getField()).isEqualTo(param);
                    assertThat(ex.getMessage()).isNotBlank();
                });
    }

    @Test
    void provenanceGoesWithToolsTheModelMayNotCall() {
        ChatCompletionRequest request = read(("{%s, \"speculation\": {\"provenance\": true}, \"tools\": [{\"type\": "
                + "\"function\", \"function\": {\"name\": \"f\"}}], \"tool_choice\": \"none\"}")
            .formatted(HELLO));

        assertThat(request.options().getProvenance()).isTrue();
        assertThat(request.options().getToolChoice()).isEqualTo("none");
    }

    @Test
    void rejectsABodyThatIsNotAnObject() {
        assertThatThrownBy(() -> read("[1, 2]")).isInstanceOfSatisfying(InvalidRequestException.class,
                (ex) -> assertThat(ex.getField()).isNull());
    }

    @Test
    void reportsAnUnknownModelWithOpenAisCode() {
        assertThatThrownBy(() -> read("{\"model\": \"gpt-4o\", %s}".formatted(HELLO)))
            .isInstanceOfSatisfying(InvalidRequestException.class, (ex) -> {
                assertThat(ex.getCode()).isEqualTo("model_not_found");
                assertThat(ex.getMessage()).contains("gpt-4o", MODEL);
            });
    }

    private static ChatCompletionRequest read(String json) {
        return ChatCompletionRequest.read(JSON.readTree(json), MODEL);
    }

}
