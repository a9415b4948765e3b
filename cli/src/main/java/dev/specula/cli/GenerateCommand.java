package dev.specula.cli;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import com.fasterxml.jackson.databind.ObjectMapper;

import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.GenerationStats;
import dev.specula.engine.ModelPair;
import dev.specula.policy.PolicyResources;
import dev.specula.proposer.PromptLookup;
import dev.specula.proposer.ProposerKind;
import dev.specula.proposer.TreeShape;
import dev.specula.sampling.SamplingParams;
import dev.specula.sampling.TokenLogprob;
import dev.specula.sampling.TokenPenalties;

/**
 * {@code specula-cli generate [--target DIR] [--draft DIR] [--griffin DIR] (--prompt TEXT | --chat TEXT | --prompt-ids 12,5,99)
 * [--max-new-tokens 64] [--temperature 0] [--top-p 1] [--top-k 0] [--seed N] [--policy plain|fixed|...]
 * [--gamma 4] [--json]}, plus {@code --stop TEXT} (repeatable),
 * {@code --policy-option k=v}, {@code --threads N}, {@code --provider cpu|cuda},
 * {@code --device N}.
 */
final class GenerateCommand {

    static final String USAGE = "generate [--target DIR] [--draft DIR] [--griffin DIR] (--prompt TEXT | --chat TEXT | --prompt-ids 12,5,99) "
            + "[--max-new-tokens 64] [--temperature 0] [--top-p 1] [--top-k 0] [--seed N] [--policy plain|fixed|...] "
            + "[--gamma 4] [--proposer model|ngram|model+ngram|suffix|model+suffix|prediction|griffin] [--ngram-min 1] [--ngram-max 4] "
            + "[--draft-shape chain|tree] [--tree-nodes N|auto] [--tree-width 3] "
            + "[--prediction TEXT | --prediction-file F] [--stop TEXT]... "
            + "[--response-format json|SCHEMA.json] [--frequency-penalty X] [--presence-penalty X] "
            + "[--repetition-penalty X] [--logprobs N] [--ignore-eos] [--json]";

    private static final ObjectMapper JSON = new ObjectMapper();

    private GenerateCommand() {
    }

    static int run(String[] args, PrintStream out, PrintStream err) throws Exception {
        Set<String> valued = new HashSet<>(ModelOptions.OPTIONS);
        valued.addAll(ProposerOptions.OPTIONS);
        valued.addAll(TreeOptions.OPTIONS);
        valued.addAll(Set.of("prediction", "prediction-file", "response-format", "frequency-penalty",
                "presence-penalty", "repetition-penalty", "logprobs"));
        valued.addAll(Set.of("prompt", "chat", "prompt-ids", "max-new-tokens", "temperature", "top-p", "top-k", "seed",
                "policy", "gamma", "stop", "policy-option"));
        Arguments arguments = Arguments.parse("generate", args, 1, valued, ModelOptions.flags("json", "ignore-eos"),
                Set.of("stop", "policy-option"));
        PromptInput prompt = prompt(arguments);
        SamplingParams sampling = arguments.sampling();
        int maxNewTokens = arguments.integer("max-new-tokens", 64, 1, 1 << 20);
        boolean json = arguments.has("json");
        ProposerKind proposer = ProposerOptions.kind(arguments);
        PromptLookup lookup = ProposerOptions.lookup(arguments);
        String prediction = prediction(arguments);
        TreeShape tree = TreeOptions.shape(arguments);
        try (ModelPair models = tree == null ? ModelOptions.load(arguments)
                : ModelOptions.loadPacked(arguments, "or draft chains (--draft-shape chain)");
                PolicyResources resources = new PolicyResources()) {
            // without a draft, decoding is plain unless a policy or a proposer asks for
            // prompt lookup
            String policy = arguments.string("policy", models.draft().isPresent() || models.head().isPresent()
                    || arguments.has("proposer") || prediction != null ? "fixed" : "plain");
            GenerationRequest request = GenerationRequest.builder(prompt.encode(models.target()))
                .sampling(sampling)
                .maxNewTokens(maxNewTokens)
                .stopStrings(arguments.all("stop"))
                .ignoreEos(arguments.has("ignore-eos"))
                .policy(PolicyOptions.factory(policy, arguments, models, resources))
                .proposer(proposer)
                .promptLookup(lookup)
                .tree(tree)
                .prediction(prediction == null ? null : models.target().tokenizer().encode(prediction, false))
                .grammar(ResponseFormats.grammar(arguments.string("response-format", null), models))
                .penalties(new TokenPenalties(arguments.number("frequency-penalty", 0),
                        arguments.number("presence-penalty", 0), arguments.number("repetition-penalty", 1), Map.of()))
                .logprobs(arguments.has("logprobs") ? arguments.integer("logprobs", 0, 0, TokenLogprob.MAX_TOP) : -1)
                .listener(json ? null : (text) -> {
                    out.print(text);
                    out.flush();
                })
                .build();
            GenerationResult result;
            try (Engine engine = new Engine(models, Engine.Settings.defaults().withoutDraftTimeLimit())) {
                result = engine.generate(request);
            }
            if (json) {
                out.println(JSON.writeValueAsString(toJson(result)));
            }
            else {
                out.println();
                GenerationStats stats = result.stats();
                err.printf(
                        "[%s%s] %d tokens, finish %s, %.1f tokens/s, mean accepted length %.2f, target calls %d, draft calls %d%n",
                        result.policy(), result.proposer() == null ? "" : ", " + result.proposer(),
                        result.tokenIds().length, result.finishReason().wireName(), stats.tokensPerSecond(),
                        stats.meanAcceptedLength(), stats.targetCalls(), stats.draftCalls());
            }
        }
        return 0;
    }

    /**
     * {@code --prediction TEXT} or the text of {@code --prediction-file F}; null: none.
     */
    private static String prediction(Arguments arguments) {
        if (arguments.has("prediction") && arguments.has("prediction-file")) {
            throw new CliException("generate: give --prediction TEXT or --prediction-file F, not both");
        }
        if (arguments.has("prediction")) {
            return arguments.string("prediction", null);
        }
        if (!arguments.has("prediction-file")) {
            return null;
        }
        Path file = Path.of(arguments.string("prediction-file", null));
        try {
            return Files.readString(file);
        }
        catch (IOException ex) {
            throw new CliException("generate: cannot read --prediction-file " + file.toAbsolutePath() + ": "
                    + ex.getClass().getSimpleName() + " " + ex.getMessage());
        }
    }

    private static PromptInput prompt(Arguments arguments) {
        int given = (arguments.has("prompt") ? 1 : 0) + (arguments.has("chat") ? 1 : 0)
                + (arguments.has("prompt-ids") ? 1 : 0);
        if (given != 1) {
            throw new CliException("generate: give exactly one of --prompt TEXT, --chat TEXT or --prompt-ids 12,5,99");
        }
        if (arguments.has("prompt")) {
            return PromptInput.ofText(arguments.string("prompt", null));
        }
        if (arguments.has("chat")) {
            return PromptInput.ofChat(arguments.string("chat", null));
        }
        return PromptInput.ofIds(PromptInput.parseIds(arguments.string("prompt-ids", null), "--prompt-ids"));
    }

    static Map<String, Object> toJson(GenerationResult result) {
        GenerationStats stats = result.stats();
        Map<String, Object> statsJson = new LinkedHashMap<>();
        statsJson.put("target_calls", stats.targetCalls());
        statsJson.put("draft_calls", stats.draftCalls());
        statsJson.put("drafted", stats.drafted());
        statsJson.put("accepted", stats.accepted());
        statsJson.put("mean_accepted_length", stats.meanAcceptedLength());
        statsJson.put("wall_ms", stats.wallNanos() / 1e6);
        statsJson.put("target_ms", stats.targetNanos() / 1e6);
        statsJson.put("draft_ms", stats.draftNanos() / 1e6);
        statsJson.put("tokens_per_second", stats.tokensPerSecond());
        statsJson.put("policy", result.policy());
        statsJson.put("proposer", result.proposer());
        statsJson.put("accepted_per_position", stats.acceptedAtPosition());
        statsJson.put("drafted_per_position", stats.draftedAtPosition());
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("token_ids", result.tokenIds());
        json.put("text", result.text());
        json.put("finish_reason", result.finishReason().wireName());
        json.put("prompt_tokens", result.promptTokens());
        json.put("stats", statsJson);
        if (!result.logprobs().isEmpty()) {
            List<Map<String, Object>> logprobs = new ArrayList<>();
            for (TokenLogprob logprob : result.logprobs()) {
                Map<String, Object> entry = new LinkedHashMap<>();
                entry.put("token_id", logprob.token());
                entry.put("logprob", logprob.logprob());
                entry.put("top_token_ids", logprob.topTokens());
                entry.put("top_logprobs", logprob.topLogprobs());
                logprobs.add(entry);
            }
            json.put("logprobs", logprobs);
        }
        return json;
    }

}
