package dev.specula.serving;

import java.time.Duration;
import java.util.function.Supplier;

import org.jspecify.annotations.Nullable;

import dev.specula.engine.Engine;
import dev.specula.engine.GenerationRequest;
import dev.specula.engine.GenerationResult;
import dev.specula.engine.ModelPair;
import dev.specula.policy.PlainPolicy;
import dev.specula.policy.PolicyResources;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.SpeculationPolicy;
import dev.specula.proposer.ProposerKind;

/**
 * Decodes for a while on a freshly loaded pair before it serves ({@code specula.warm-up},
 * off by default), as llama.cpp's server warms up before it listens. A JVM that just
 * started compiles the decode loop while the first requests run: on 2 cores the compiler
 * threads also take ONNX Runtime's, and in the CLI the embedded pair's first generations
 * ran at about half the speed of later ones. ONNX Runtime's first calls also allocate its
 * arenas. Behind the gateway, on the CPU, it made no measurable difference
 * (docs/benchmarks.md, "A warm JVM").
 *
 * <p>
 * Plain and speculative generations alternate, the speculative ones under the configured
 * policy and proposer (trees too), batched through a scheduler when batching is on, so
 * the code the requests will run is what gets compiled. The warm-up runs on an engine and
 * policy state of its own, closed after it: the service's learned estimates, metrics and
 * caches start empty. Greedy answers to a fixed prompt, each sized to end near the
 * budget; a failure fails the load.
 */
public final class ModelWarmUp {

    /** Code and prose, so the prompt lookup and the draft both find something to do. */
    static final String PROMPT = """
            def fibonacci(n):
                \"\"\"Return the n-th Fibonacci number.\"\"\"
                a, b = 0, 1
                for _ in range(n):
                    a, b = b, a + b
                return a

            The function above returns""";

    /** New tokens of the first generation, before any is measured. */
    private static final int FIRST_TOKENS = 4;

    /** New tokens a warm-up generation asks for at most. */
    private static final int MAX_TOKENS = 64;

    /**
     * What a warm-up did.
     *
     * @param plainGenerations generations decoded plainly
     * @param speculativeGenerations generations under the configured policy
     * @param tokens new tokens over all of them
     * @param nanos its wall time
     */
    public record Report(int plainGenerations, int speculativeGenerations, long tokens, long nanos) {

        public int generations() {
            return plainGenerations + speculativeGenerations;
        }

    }

    private ModelWarmUp() {
    }

    /**
     * Alternates plain and speculative generations on {@code pair} until {@code budget}
     * has passed (none when it is zero).
     * @throws RuntimeException what a generation threw: the pair cannot serve
     */
    public static Report run(ModelPair pair, PolicySettings policy, BatchingSettings batching, Duration budget) {
        if (budget.isNegative()) {
            throw new IllegalArgumentException("budget must not be negative but was " + budget);
        }
        long start = System.nanoTime();
        long deadline = start + budget.toNanos();
        int[] prompt = pair.target().tokenizer().encode(PROMPT, true);
        int context = pair.target().contextLength();
        context = Math.min(context, pair.draft().map((draft) -> draft.contextLength()).orElse(context));
        context = Math.min(context, pair.head().map((head) -> head.contextLength()).orElse(context));
        int room = context - prompt.length;
        if (budget.isZero() || room < 1) {
            return new Report(0, 0, 0, 0);
        }
        Engine.Settings settings = batching.enabled()
                ? new Engine.Settings(batching.maxBatchSize(), batching.queueCapacity(), batching.maxWait(), null)
                : Engine.Settings.defaults().withoutDraftTimeLimit();
        ProposerKind proposer = usableProposer(policy.proposer(), pair);
        int plain = 0;
        int speculative = 0;
        long tokens = 0;
        try (PolicyResources resources = new PolicyResources(); Engine engine = new Engine(pair, settings)) {
            Supplier<SpeculationPolicy> speculating = SpeculationPolicies.factory(policy.name(),
                    policy.parameters().withResources(resources).withModelDirectory(pair.target().files().directory()));
            int maxTokens = Math.min(FIRST_TOKENS, room);
            long now = start;
            while (now < deadline) {
                boolean plainTurn = (plain + speculative) % 2 == 0;
                GenerationRequest.Builder request = GenerationRequest.builder(prompt)
                    .maxNewTokens(maxTokens)
                    .ignoreEos(true);
                if (plainTurn) {
                    request.policy(PlainPolicy::new);
                }
                else {
                    request.policy(speculating)
                        .proposer(proposer)
                        .promptLookup(policy.promptLookup())
                        .tree(proposer != null && proposer.usesDrafter() ? policy.tree() : null);
                }
                long before = System.nanoTime();
                GenerationResult result = batching.enabled() ? engine.submit(request.build()).join()
                        : engine.generate(request.build());
                now = System.nanoTime();
                int generated = result.tokenIds().length;
                tokens += generated;
                if (plainTurn) {
                    plain++;
                }
                else {
                    speculative++;
                }
                // the next one sized to end near the deadline, from this one's time per
                // token
                long perToken = (now - before) / Math.max(1, generated);
                long fitting = perToken == 0 ? MAX_TOKENS : (deadline - now) / perToken;
                maxTokens = (int) Math.max(1, Math.min(Math.min(MAX_TOKENS, room), fitting));
            }
        }
        catch (java.util.concurrent.CompletionException ex) {
            throw ex.getCause() instanceof RuntimeException runtime ? runtime : ex;
        }
        return new Report(plain, speculative, tokens, System.nanoTime() - start);
    }

    /**
     * The configured proposer where the pair can run it; otherwise the engine's default
     * (null), and the service reports the misconfiguration on its first request.
     */
    private static @Nullable ProposerKind usableProposer(@Nullable ProposerKind configured, ModelPair pair) {
        if (configured == null || configured.usesModel() && pair.draft().isEmpty()
                || configured.usesHead() && pair.head().isEmpty()) {
            return null;
        }
        return configured;
    }

}
