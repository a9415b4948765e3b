package dev.specula.engine;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import dev.specula.Fixtures;
import dev.specula.grammar.CompiledGrammar;
import dev.specula.grammar.Grammar;
import dev.specula.grammar.GrammarMatcher;
import dev.specula.grammar.TokenVocabulary;
import dev.specula.kv.KvSequence;
import dev.specula.model.DecoderModel;
import dev.specula.model.RuntimeOptions;
import dev.specula.model.StepInput;
import dev.specula.model.StepOutput;
import dev.specula.models.tiny.TinyModels;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.PlainPolicy;
import dev.specula.proposer.ProposerKind;
import dev.specula.sampling.TokenPenalties;
import dev.specula.tokenizer.ChatMessage;
import dev.specula.tokenizer.PromptEncoder;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Constrained decoding under speculation, greedy, on the embedded pair: the output equals
 * a reference written here, outside the decode loop (the target fed one token at a time,
 * each row masked by a matcher of its own, argmax), for the draft model, prompt lookup
 * and plain decoding; and the weak embedded model's output is valid JSON of the schema.
 */
class ConstrainedLosslessTest {

    private static final String PERSON = """
            {"type": "object", "properties": {
              "name": {"type": "string", "maxLength": 24},
              "age": {"type": "integer"},
              "languages": {"type": "array", "items": {"type": "string", "enum": ["python", "java", "go"]}, "maxItems": 3},
              "active": {"type": "boolean"}},
             "required": ["name", "age", "languages", "active"], "additionalProperties": false}""";

    private static final int MAX_TOKENS = 96;

    private static DecoderModel target;

    private static DecoderModel draft;

    private static TokenVocabulary vocabulary;

    private static int[] endIds;

    private static List<int[]> prompts;

    @BeforeAll
    static void load() throws Exception {
        TinyModels.Pair pair = Fixtures.embeddedPair();
        target = DecoderModel.load(pair.target(), RuntimeOptions.defaults());
        draft = DecoderModel.load(pair.draft(), RuntimeOptions.defaults());
        vocabulary = TokenVocabulary.read(target.tokenizer().file());
        endIds = target.config().eosTokenIds().stream().mapToInt(Integer::intValue).toArray();
        PromptEncoder encoder = new PromptEncoder(target.tokenizer(), target.chatTemplate(), "target");
        prompts = new ArrayList<>();
        for (String question : Fixtures.codePrompts(6)) {
            prompts.add(encoder.chat(List.of(ChatMessage.user("Describe a programmer as JSON.\n" + question))));
        }
    }

    @AfterAll
    static void close() {
        target.close();
        draft.close();
    }

    @Test
    void schemaConstrainedGreedyOutputIsTheReferencesUnderEveryProposer() throws Exception {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonSchema(PERSON), vocabulary, endIds);
        check(grammar, TokenPenalties.NONE, (output) -> {
            JsonNode person = new ObjectMapper().readTree(output);
            assertThat(person.path("name").isTextual()).as(output).isTrue();
            assertThat(person.path("age").isIntegralNumber()).as(output).isTrue();
            assertThat(person.path("active").isBoolean()).as(output).isTrue();
            for (JsonNode language : person.path("languages")) {
                assertThat(language.asText()).isIn("python", "java", "go");
            }
        });
    }

    @Test
    void jsonModeWithPenaltiesIsTheReferences() throws Exception {
        CompiledGrammar grammar = CompiledGrammar.compile(Grammar.jsonObject(), vocabulary, endIds);
        check(grammar, new TokenPenalties(0.5, 0.2, 1.1, Map.of()),
                (output) -> assertThat(new ObjectMapper().readTree(output).isObject()).as(output).isTrue());
    }

    @Test
    void aGrammarTheVocabularyCannotSpellFailsByName(@org.junit.jupiter.api.io.TempDir java.nio.file.Path directory)
            throws Exception {
        // a vocabulary of "{" and "}" only, without byte fallback: a JSON object with a
        // required key cannot be written, and nothing is allowed after "{"
        java.nio.file.Path tokenizer = directory.resolve("tokenizer.json");
        StringBuilder ends = new StringBuilder();
        for (int end : endIds) {
            ends.append(ends.isEmpty() ? "" : ", ")
                .append("{\"id\": ")
                .append(end)
                .append(", \"content\": \"<|end")
                .append(end)
                .append("|>\", \"special\": true}");
        }
        java.nio.file.Files.writeString(tokenizer,
                "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"{\": 4000, \"}\": 4001}, "
                        + "\"merges\": []}, \"added_tokens\": [" + ends + "]}");
        CompiledGrammar unspellable = CompiledGrammar.compile(Grammar.jsonSchema(
                "{\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}, " + "\"required\": [\"a\"]}"),
                TokenVocabulary.read(tokenizer), endIds);
        SpeculativeDecoder decoder = new SpeculativeDecoder(new ModelPair(target, draft));
        for (dev.specula.sampling.SamplingParams sampling : List.of(dev.specula.sampling.SamplingParams.GREEDY,
                new dev.specula.sampling.SamplingParams(1.0, 0, 1.0, 7L))) {
            org.assertj.core.api.Assertions
                .assertThatThrownBy(() -> decoder.generate(GenerationRequest.builder(prompts.get(0))
                    .maxNewTokens(8)
                    .sampling(sampling)
                    .grammar(unspellable)
                    .policy(() -> new FixedPolicy(3))
                    .build()))
                .isInstanceOf(GenerationException.class)
                .hasMessageContaining("grammar allows no token");
        }
    }

    private interface OutputCheck {

        void accept(String output) throws Exception;

    }

    private void check(CompiledGrammar grammar, TokenPenalties penalties, OutputCheck valid) throws Exception {
        SpeculativeDecoder speculative = new SpeculativeDecoder(new ModelPair(target, draft));
        SpeculativeDecoder targetOnly = new SpeculativeDecoder(new ModelPair(target, null));
        GenerationStats stats = new GenerationStats();
        int complete = 0;
        for (int p = 0; p < prompts.size(); p++) {
            int[] prompt = prompts.get(p);
            int[] reference = reference(prompt, grammar, penalties);
            GenerationResult plain = targetOnly
                .generate(request(prompt, grammar, penalties).policy(PlainPolicy::new).build());
            GenerationResult drafted = speculative
                .generate(request(prompt, grammar, penalties).policy(() -> new FixedPolicy(4)).build());
            GenerationResult lookedUp = targetOnly
                .generate(request(prompt, grammar, penalties).policy(() -> new FixedPolicy(4))
                    .proposer(ProposerKind.NGRAM)
                    .build());
            assertThat(plain.tokenIds()).as("plain, prompt %d", p).containsExactly(reference);
            assertThat(drafted.tokenIds()).as("draft model, prompt %d", p).containsExactly(reference);
            assertThat(lookedUp.tokenIds()).as("prompt lookup, prompt %d", p).containsExactly(reference);
            stats.add(drafted.stats());
            if (drafted.finishReason() == FinishReason.EOS) {
                valid.accept(drafted.text());
                complete++;
            }
        }
        assertThat(complete).as("most outputs complete the grammar within %d tokens", MAX_TOKENS)
            .isGreaterThanOrEqualTo(prompts.size() / 2);
        assertThat(stats.accepted()).as("drafts were accepted under the grammar").isPositive();
        assertThat(stats.grammarNanos()).as("the grammar's time is counted").isPositive();
    }

    private static GenerationRequest.Builder request(int[] prompt, CompiledGrammar grammar, TokenPenalties penalties) {
        return GenerationRequest.builder(prompt).maxNewTokens(MAX_TOKENS).grammar(grammar).penalties(penalties);
    }

    /**
     * Constrained greedy decoding outside the decode loop: one token per target call, the
     * row penalized then masked, argmax, until an end token or the limit.
     */
    private static int[] reference(int[] prompt, CompiledGrammar grammar, TokenPenalties penalties) throws Exception {
        int width = target.logitsWidth();
        GrammarMatcher matcher = grammar.newMatcher();
        dev.specula.sampling.LogitsProcessor penalty = penalties.isNone() ? null : penalties.newProcessor(prompt);
        List<Integer> output = new ArrayList<>();
        try (KvSequence cache = target.newCache()) {
            int[] input = prompt;
            while (output.size() < MAX_TOKENS) {
                StepOutput out = target.forward(new StepInput(cache, input, 1, false, null));
                float[] row = java.util.Arrays.copyOf(out.logits(), width);
                if (penalty != null) {
                    penalty.process(row, 0, width);
                }
                matcher.mask(row, 0, width);
                int next = dev.specula.sampling.Distributions.argmax(row, 0, width);
                output.add(next);
                if (target.config().eosTokenIds().contains(next)) {
                    break;
                }
                matcher.advance(next);
                if (penalty != null) {
                    penalty.advance(next);
                }
                input = new int[] { next };
            }
        }
        return output.stream().mapToInt(Integer::intValue).toArray();
    }

}
