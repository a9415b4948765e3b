package dev.specula.sample;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import tools.jackson.databind.json.JsonMapper;

import dev.specula.chat.SpeculaChatOptions;
import dev.specula.request.InvalidRequestException;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Reading the legacy completions API's request JSON: the prompt's forms, the fields it
 * shares with the chat API, and which field each mistake is reported against.
 */
class CompletionRequestTest {

    private static final JsonMapper JSON = JsonMapper.builder().build();

    @Test
    void readsEveryFieldIntoTheRequestAndItsOptions() {
        CompletionRequest request = read("""
                {"model": "specula-tiny", "prompt": "def add(a, b):", "suffix": "\\n\\nprint(add(1, 2))",
                 "max_tokens": 12, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "seed": 42, "stop": "\\n\\n",
                 "n": 1, "best_of": 1, "frequency_penalty": 0.5, "presence_penalty": -0.25,
                 "repetition_penalty": 1.1, "logit_bias": {"13": -100}, "logprobs": 3, "user": "someone",
                 "stream": true, "stream_options": {"include_usage": true},
                 "speculation": {"policy": "fixed", "gamma": 3, "proposer": "ngram"},
                 "prediction": {"type": "content", "content": "    return a + b"}}""");

        assertThat(request.promptText()).isEqualTo("def add(a, b):");
        assertThat(request.promptIds()).isNull();
        assertThat(request.suffix()).isEqualTo("\n\nprint(add(1, 2))");
        assertThat(request.echo()).isFalse();
        assertThat(request.logprobs()).isEqualTo(3);
        assertThat(request.stream()).isTrue();
        assertThat(request.includeUsage()).isTrue();
        SpeculaChatOptions options = request.options();
        assertThat(options.getModel()).isEqualTo("specula-tiny");
        assertThat(options.getMaxTokens()).isEqualTo(12);
        assertThat(options.getTemperature()).isEqualTo(0.7);
        assertThat(options.getTopP()).isEqualTo(0.9);
        assertThat(options.getTopK()).isEqualTo(40);
        assertThat(options.getSeed()).isEqualTo(42L);
        assertThat(options.getStopSequences()).containsExactly("\n\n");
        assertThat(options.getFrequencyPenalty()).isEqualTo(0.5);
        assertThat(options.getPresencePenalty()).isEqualTo(-0.25);
        assertThat(options.getRepetitionPenalty()).isEqualTo(1.1);
        assertThat(options.getLogitBias()).containsEntry(13, -100.0);
        assertThat(options.getLogprobs()).isTrue();
        assertThat(options.getTopLogprobs()).isEqualTo(3);
        assertThat(options.getPolicy()).isEqualTo("fixed");
        assertThat(options.getGamma()).isEqualTo(3);
        assertThat(options.getProposer()).isEqualTo("ngram");
        assertThat(options.getPrediction()).isEqualTo("    return a + b");
    }

    @Test
    void aPromptIsAStringTokenIdsOrABatchOfOneOfThem() {
        assertThat(read("{\"prompt\": [1, 2, 3]}").promptIds()).containsExactly(1, 2, 3);
        assertThat(read("{\"prompt\": [[4, 5]]}").promptIds()).containsExactly(4, 5);
        assertThat(read("{\"prompt\": [\"import os\"]}").promptText()).isEqualTo("import os");
        CompletionRequest plain = read("{\"prompt\": \"import os\", \"echo\": true}");
        assertThat(plain.promptText()).isEqualTo("import os");
        assertThat(plain.echo()).isTrue();
        assertThat(plain.logprobs()).isNull();
        assertThat(plain.options().getLogprobs()).isNull();
        assertThat(plain.options().getMaxTokens()).as("the model's default").isNull();
    }

    @Test
    void echoWithLogprobsAsksForThePromptsLogprobs() {
        CompletionRequest scored = read("{\"prompt\": \"import os\", \"echo\": true, \"logprobs\": 3}");
        assertThat(scored.options().getPromptLogprobs()).isEqualTo(3);
        assertThat(scored.options().getTopLogprobs()).isEqualTo(3);
        assertThat(read("{\"prompt\": \"import os\", \"logprobs\": 3}").options().getPromptLogprobs()).isNull();
        // max_tokens 0: the prompt alone, scored (vLLM's echo without generation)
        CompletionRequest onlyPrompt = read(
                "{\"prompt\": \"import os\", \"echo\": true, \"logprobs\": 1, \"max_tokens\": 0}");
        assertThat(onlyPrompt.options().getMaxTokens()).isZero();
        assertThat(onlyPrompt.options().getPromptLogprobs()).isEqualTo(1);
        CompletionRequest echoOnly = read("{\"prompt\": \"import os\", \"echo\": true, \"max_tokens\": 0}");
        assertThat(echoOnly.options().getMaxTokens()).isZero();
        assertThat(echoOnly.logprobs()).isNull();
        assertThat(echoOnly.options().getPromptLogprobs()).as("the model scores what it is given alone").isZero();
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = { "{}|prompt|prompt is required", "{\"prompt\": 42}|prompt|a string",
            "{\"prompt\": []}|prompt|must not be empty", "{\"prompt\": [\"a\", \"b\"]}|prompt|batch of 2 prompts",
            "{\"prompt\": [[1], [2]]}|prompt|batch of 2 prompts", "{\"prompt\": [[]]}|prompt[0]|must not be empty",
            "{\"prompt\": [1, -2]}|prompt[1]|token id", "{\"prompt\": [1, 2.5]}|prompt[1]|token id",
            "{\"prompt\": [1, \"x\"]}|prompt[1]|token id", "{\"prompt\": \"x\", \"logprobs\": true}|logprobs|0 to 5",
            "{\"prompt\": \"x\", \"logprobs\": 6}|logprobs|but was 6",
            "{\"prompt\": \"x\", \"echo\": true, \"logprobs\": 1, \"suffix\": \"y\"}|echo|fill-in-the-middle",
            "{\"prompt\": \"x\", \"echo\": true, \"max_tokens\": -1}|max_tokens|>= 0",
            "{\"prompt\": \"x\", \"echo\": \"yes\"}|echo|true or false",
            "{\"prompt\": \"x\", \"suffix\": 3}|suffix|must be a string", "{\"prompt\": \"x\", \"n\": 2}|n|must be 1",
            "{\"prompt\": \"x\", \"best_of\": 3}|best_of|must be 1",
            "{\"prompt\": \"x\", \"max_tokens\": 0}|max_tokens|with echo",
            "{\"prompt\": \"x\", \"temperature\": -1}|temperature|>= 0",
            "{\"prompt\": \"x\", \"stop\": [\"\"]}|stop|empty",
            "{\"prompt\": \"x\", \"speculation\": {\"gamma\": 0}}|speculation.gamma|>= 1",
            "{\"prompt\": \"x\", \"model\": \"gpt-3.5-turbo-instruct\"}|model|specula-tiny",
            "{\"prompt\": \"x\", \"messages\": []}|messages|Unrecognized request field",
            "{\"prompt\": \"x\", \"max_completion_tokens\": 5}|max_completion_tokens|Unrecognized request field" })
    void eachMistakeNamesItsField(String body, String field, String message) {
        assertThatThrownBy(() -> read(body))
            .isInstanceOfSatisfying(InvalidRequestException.class, (ex) -> assertThat(ex.getField()).isEqualTo(field))
            .hasMessageContaining(message);
    }

    private static CompletionRequest read(String json) {
        return CompletionRequest.read(JSON.readTree(json), "specula-tiny");
    }

}
