package dev.specula.autoconfigure;

import dev.specula.model.ExecutionProvider;
import dev.specula.policy.FixedPolicy;
import dev.specula.policy.SpeculationPolicies;
import dev.specula.policy.UnknownPolicyException;
import org.springframework.beans.factory.InitializingBean;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.boot.context.properties.NestedConfigurationProperty;

import java.time.Duration;
import org.springframework.util.unit.DataSize;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Settings of Specula's ChatModel: where the models are, how ONNX Runtime runs them, how to speculate,
 * chat defaults, the response cache and resilience.
 *
 * <p>Values are checked once bound ({@link #validate()}): a value out of range stops the application with an
 * {@link InvalidSpeculaPropertyException} naming the property, the value and the range, an unknown policy
 * with an {@link UnknownPolicyException} listing the known ones.
 */
@ConfigurationProperties(SpeculaProperties.CONFIG_PREFIX)
public class SpeculaProperties implements InitializingBean {

    public static final String CONFIG_PREFIX = "specula";

    /** Target model: the large model whose output is returned. Unset (with the draft unset too): the embedded pair. */
    @NestedConfigurationProperty
    private final Model target = new Model();

    /** Draft model: the small model that proposes tokens; it must share the target's tokenizer. */
    @NestedConfigurationProperty
    private final Draft draft = new Draft();

    /** Name of the served model, as requests and responses name it. Defaults to the target directory's name ("specula-tiny" for the embedded pair). */
    private String modelName;

    /** When the models are loaded: at startup (errors stop the application), or in the background (requests fail as "not ready" until loaded). */
    private LoadMode loadMode = LoadMode.EAGER;

    /** How ONNX Runtime runs the models. */
    private final Runtime runtime = new Runtime();

    /** Default speculation policy (requests may choose another). */
    private final Policy policy = new Policy();

    /** Chat defaults: the options of requests that set none. */
    private final Chat chat = new Chat();

    /** Response cache of deterministic requests (temperature 0, or a fixed seed). */
    private final Cache cache = new Cache();

    /** Fallback to plain decoding, and the bulkhead. */
    private final Resilience resilience = new Resilience();

    /** Threads that run generations. */
    private final Scheduler scheduler = new Scheduler();

    public Model getTarget() {
        return target;
    }

    public Draft getDraft() {
        return draft;
    }

    public String getModelName() {
        return modelName;
    }

    public void setModelName(String modelName) {
        this.modelName = modelName;
    }

    public LoadMode getLoadMode() {
        return loadMode;
    }

    public void setLoadMode(LoadMode loadMode) {
        this.loadMode = loadMode;
    }

    public Runtime getRuntime() {
        return runtime;
    }

    public Policy getPolicy() {
        return policy;
    }

    public Chat getChat() {
        return chat;
    }

    public Cache getCache() {
        return cache;
    }

    public Resilience getResilience() {
        return resilience;
    }

    public Scheduler getScheduler() {
        return scheduler;
    }

    /** Checks every value once bound (a Spring callback); see {@link #validate()}. */
    @Override
    public void afterPropertiesSet() {
        validate();
    }

    /**
     * Checks every value against its range.
     *
     * @throws InvalidSpeculaPropertyException naming the first property out of range, its value and the range
     * @throws UnknownPolicyException when {@code specula.policy.name} names no known policy
     */
    public void validate() {
        String prefix = CONFIG_PREFIX + ".";
        requireLocation(prefix + "target.location", target.getLocation());
        requireLocation(prefix + "draft.location", draft.getLocation());
        if (target.getLocation() == null && draft.getLocation() != null && draft.isEnabled()) {
            throw new InvalidSpeculaPropertyException(prefix + "target.location", null,
                    "a model location whenever specula.draft.location is set (the embedded pair is used only when both are unset)");
        }
        if (modelName != null && modelName.isBlank()) {
            throw new InvalidSpeculaPropertyException(prefix + "model-name", modelName, "a non-blank name, or unset");
        }
        requireAtLeast(prefix + "runtime.device-id", runtime.getDeviceId(), 0, "an integer >= 0 (the GPU index)");
        requireAtLeast(prefix + "runtime.intra-op-threads", runtime.getIntraOpThreads(), 0,
                "an integer >= 0 (0 lets ONNX Runtime choose)");
        validatePolicy(prefix + "policy.");
        validateChatOptions(prefix + "chat.options.");
        requireAtLeast(prefix + "cache.maximum-size", cache.getMaximumSize(), 0, "an integer >= 0 (0 caches nothing)");
        requirePositive(prefix + "cache.time-to-live", cache.getTimeToLive(), "a positive duration, e.g. 10m");
        validateResilience(prefix + "resilience.");
        requireAtLeast(prefix + "scheduler.stream-threads", scheduler.getStreamThreads(), 0,
                "an integer >= 0 (0 = specula.resilience.max-concurrent-generations)");
        requireAtLeast(prefix + "scheduler.max-batch-size", scheduler.getMaxBatchSize(), 1, "an integer >= 1");
        requireAtLeast(prefix + "scheduler.queue-capacity", scheduler.getQueueCapacity(), 1, "an integer >= 1");
        if (scheduler.getMaxWait() == null || scheduler.getMaxWait().isNegative()) {
            throw new InvalidSpeculaPropertyException(prefix + "scheduler.max-wait", scheduler.getMaxWait(),
                    "a duration >= 0, e.g. 2ms");
        }
        if (scheduler.getPrefixCacheSize() == null || scheduler.getPrefixCacheSize().isNegative()) {
            throw new InvalidSpeculaPropertyException(prefix + "scheduler.prefix-cache-size", scheduler.getPrefixCacheSize(),
                    "a size >= 0, e.g. 64MB (0 = off)");
        }
    }

    private void validatePolicy(String prefix) {
        String spec = policy.getName();
        if (spec == null || spec.isBlank()) {
            throw new InvalidSpeculaPropertyException(prefix + "name", spec,
                    "a policy name or name:gamma, one of " + String.join(", ", SpeculationPolicies.names()));
        }
        SpeculationPolicies.requireKnown(spec);
        int colon = spec.indexOf(':');
        if (colon >= 0) {
            String gammaText = spec.substring(colon + 1).trim();
            int gamma;
            try {
                gamma = Integer.parseInt(gammaText);
            }
            catch (NumberFormatException ex) {
                throw new InvalidSpeculaPropertyException(prefix + "name", spec,
                        "name or name:gamma with gamma an integer from 1 to " + FixedPolicy.MAX_GAMMA + " (e.g. fixed:4)", ex);
            }
            requireRange(prefix + "name", spec, gamma, 1, FixedPolicy.MAX_GAMMA,
                    "name or name:gamma with gamma an integer from 1 to " + FixedPolicy.MAX_GAMMA + " (e.g. fixed:4)");
        }
        requireRange(prefix + "gamma", policy.getGamma(), policy.getGamma(), 1, FixedPolicy.MAX_GAMMA,
                "an integer from 1 to " + FixedPolicy.MAX_GAMMA);
    }

    private void validateChatOptions(String prefix) {
        Chat.Options options = chat.getOptions();
        Double temperature = options.getTemperature();
        if (temperature != null && !(temperature >= 0 && Double.isFinite(temperature))) {
            throw new InvalidSpeculaPropertyException(prefix + "temperature", temperature, "a number >= 0 (0 = greedy)");
        }
        Double topP = options.getTopP();
        if (topP != null && !(topP > 0 && topP <= 1)) {
            throw new InvalidSpeculaPropertyException(prefix + "top-p", topP, "a number in (0, 1], 0 excluded (1 = off)");
        }
        if (options.getTopK() != null) {
            requireAtLeast(prefix + "top-k", options.getTopK(), 0, "an integer >= 0 (0 = off)");
        }
        if (options.getMaxTokens() != null) {
            requireAtLeast(prefix + "max-tokens", options.getMaxTokens(), 1, "an integer >= 1");
        }
        List<String> stops = options.getStopSequences();
        for (int i = 0; stops != null && i < stops.size(); i++) {
            if (stops.get(i) == null || stops.get(i).isEmpty()) {
                throw new InvalidSpeculaPropertyException(prefix + "stop-sequences[" + i + "]", stops.get(i), "a non-empty text");
            }
        }
    }

    private void validateResilience(String prefix) {
        requirePositive(prefix + "round-timeout", resilience.getRoundTimeout(), "a positive duration, e.g. 10s");
        requireAtLeast(prefix + "max-concurrent-generations", resilience.getMaxConcurrentGenerations(), 1, "an integer >= 1");
        Duration maxWait = resilience.getMaxWaitForSlot();
        if (maxWait == null || maxWait.isNegative()) {
            throw new InvalidSpeculaPropertyException(prefix + "max-wait-for-slot", shown(maxWait), "a duration >= 0 (0 = do not wait)");
        }
        float threshold = resilience.getFailureRateThreshold();
        if (!(threshold > 0 && threshold <= 100)) {
            throw new InvalidSpeculaPropertyException(prefix + "failure-rate-threshold", threshold,
                    "a percentage in (0, 100], 0 excluded");
        }
        requireAtLeast(prefix + "sliding-window-size", resilience.getSlidingWindowSize(), 1, "an integer >= 1");
        requireAtLeast(prefix + "minimum-number-of-calls", resilience.getMinimumNumberOfCalls(), 1, "an integer >= 1");
        requireAtLeastOneMilli(prefix + "wait-duration-in-open-state", resilience.getWaitDurationInOpenState());
        Resilience.Goodput goodput = resilience.getGoodput();
        requireAtLeast(prefix + "goodput.probe-interval", goodput.getProbeInterval(), 1, "an integer >= 1");
        requireAtLeast(prefix + "goodput.min-tokens", goodput.getMinTokens(), 1, "an integer >= 1");
        requireAtLeastOneMilli(prefix + "goodput.wait-duration-in-open-state", goodput.getWaitDurationInOpenState());
    }

    private static void requireLocation(String property, String location) {
        if (location != null && location.isBlank()) {
            throw new InvalidSpeculaPropertyException(property, location,
                    "a model directory or its model.onnx: a path, file:... or classpath:..., or unset");
        }
    }

    private static void requireAtLeast(String property, long value, long min, String allowed) {
        requireRange(property, value, value, min, Long.MAX_VALUE, allowed);
    }

    private static void requireRange(String property, Object shown, long value, long min, long max, String allowed) {
        if (value < min || value > max) {
            throw new InvalidSpeculaPropertyException(property, shown, allowed);
        }
    }

    private static void requirePositive(String property, Duration value, String allowed) {
        if (value == null || value.isNegative() || value.isZero()) {
            throw new InvalidSpeculaPropertyException(property, shown(value), allowed);
        }
    }

    private static void requireAtLeastOneMilli(String property, Duration value) {
        if (value == null || value.toMillis() < 1) {
            throw new InvalidSpeculaPropertyException(property, shown(value), "a duration of at least 1ms, e.g. 30s");
        }
    }

    /** A duration as it is written in properties, in its largest whole unit ("-5s", "10m", "250ms"). */
    static String shown(Duration value) {
        if (value == null) {
            return null;
        }
        if (value.isZero()) {
            return "0s";
        }
        if (value.toNanos() % 1_000_000 != 0) {
            return value.toString();
        }
        long millis = value.toMillis();
        long[] sizes = {86_400_000, 3_600_000, 60_000, 1000};
        String[] units = {"d", "h", "m", "s"};
        for (int i = 0; i < sizes.length; i++) {
            if (millis % sizes[i] == 0) {
                return millis / sizes[i] + units[i];
            }
        }
        return millis + "ms";
    }

    /** When models are loaded. */
    public enum LoadMode {
        /** While the application starts; a missing or broken model stops it with a clear message. */
        EAGER,
        /** On a background thread; the application starts at once and reports "loading" until done. */
        BACKGROUND
    }

    /** One model's location. */
    public static class Model {

        /** Model directory in the Optimum text-generation-with-past layout, or its model.onnx: a path, "file:..." or "classpath:...". */
        private String location;

        public String getLocation() {
            return location;
        }

        public void setLocation(String location) {
            this.location = location;
        }
    }

    /** The draft's location, and whether to use one. */
    public static class Draft extends Model {

        /** Whether to use a draft; false serves plain target decoding only. */
        private boolean enabled = true;

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }
    }

    /** How ONNX Runtime runs the models. */
    public static class Runtime {

        /** Execution provider: CPU, or CUDA (needs com.microsoft.onnxruntime:onnxruntime_gpu instead of onnxruntime). */
        private ExecutionProvider provider = ExecutionProvider.CPU;

        /** GPU index for the CUDA provider. */
        private int deviceId = 0;

        /** Threads inside one ONNX Runtime operator; 0 lets ONNX Runtime choose. 1 is fastest on small CPUs. */
        private int intraOpThreads = 1;

        /** Whether idle ONNX Runtime threads spin (only matters with more than one intra-op thread). */
        private boolean spinning = false;

        public ExecutionProvider getProvider() {
            return provider;
        }

        public void setProvider(ExecutionProvider provider) {
            this.provider = provider;
        }

        public int getDeviceId() {
            return deviceId;
        }

        public void setDeviceId(int deviceId) {
            this.deviceId = deviceId;
        }

        public int getIntraOpThreads() {
            return intraOpThreads;
        }

        public void setIntraOpThreads(int intraOpThreads) {
            this.intraOpThreads = intraOpThreads;
        }

        public boolean isSpinning() {
            return spinning;
        }

        public void setSpinning(boolean spinning) {
            this.spinning = spinning;
        }
    }

    /** Default speculation policy (requests may choose another). */
    public static class Policy {

        /** Policy name, or "name:gamma" (e.g. "fixed:4", the gamma part wins over specula.policy.gamma); "plain" turns speculation off. */
        private String name = "fixed";

        /** Draft length gamma, 1 to 64: tokens drafted per round (the starting or maximum length for adaptive policies). */
        private int gamma = 5;

        /** Policy options by name (e.g. threshold: 0.4), checked by the policy at startup. */
        private Map<String, String> options = new LinkedHashMap<>();

        public String getName() {
            return name;
        }

        public void setName(String name) {
            this.name = name;
        }

        public int getGamma() {
            return gamma;
        }

        public void setGamma(int gamma) {
            this.gamma = gamma;
        }

        public Map<String, String> getOptions() {
            return options;
        }

        public void setOptions(Map<String, String> options) {
            this.options = options;
        }
    }

    /** Chat defaults: the options of requests that set none. */
    public static class Chat {

        /** Default chat options. */
        private final Options options = new Options();

        public Options getOptions() {
            return options;
        }

        /** Default chat options. */
        public static class Options {

            /** Sampling temperature, at least 0; 0 = greedy (deterministic, cacheable). */
            private Double temperature = 0.0;

            /** Nucleus sampling: keep the most likely tokens up to this probability mass, in (0, 1]. */
            private Double topP = 1.0;

            /** Keep only the k most likely tokens when sampling; 0 = off. */
            private Integer topK = 0;

            /** Most tokens to generate per answer, at least 1. */
            private Integer maxTokens = 256;

            /** Texts that end an answer (not included in it). */
            private List<String> stopSequences = new ArrayList<>();

            /** Seed of the sampler: with a seed, sampled answers are reproducible (and cacheable). */
            private Long seed;

            /** Whether to speculate; false = plain target decoding. */
            private boolean speculation = true;

            public Double getTemperature() {
                return temperature;
            }

            public void setTemperature(Double temperature) {
                this.temperature = temperature;
            }

            public Double getTopP() {
                return topP;
            }

            public void setTopP(Double topP) {
                this.topP = topP;
            }

            public Integer getTopK() {
                return topK;
            }

            public void setTopK(Integer topK) {
                this.topK = topK;
            }

            public Integer getMaxTokens() {
                return maxTokens;
            }

            public void setMaxTokens(Integer maxTokens) {
                this.maxTokens = maxTokens;
            }

            public List<String> getStopSequences() {
                return stopSequences;
            }

            public void setStopSequences(List<String> stopSequences) {
                this.stopSequences = stopSequences;
            }

            public Long getSeed() {
                return seed;
            }

            public void setSeed(Long seed) {
                this.seed = seed;
            }

            public boolean isSpeculation() {
                return speculation;
            }

            public void setSpeculation(boolean speculation) {
                this.speculation = speculation;
            }
        }
    }

    /** Response cache of deterministic requests (temperature 0, or a fixed seed). */
    public static class Cache {

        /** Whether deterministic answers are cached. */
        private boolean enabled = true;

        /** Most cached answers; 0 caches nothing. */
        private long maximumSize = 1000;

        /** How long an answer stays cached after it was generated. */
        private Duration timeToLive = Duration.ofMinutes(10);

        public boolean isEnabled() {
            return enabled;
        }

        public void setEnabled(boolean enabled) {
            this.enabled = enabled;
        }

        public long getMaximumSize() {
            return maximumSize;
        }

        public void setMaximumSize(long maximumSize) {
            this.maximumSize = maximumSize;
        }

        public Duration getTimeToLive() {
            return timeToLive;
        }

        public void setTimeToLive(Duration timeToLive) {
            this.timeToLive = timeToLive;
        }
    }

    /**
     * Fallback to plain decoding and the bulkhead. Resilience4j instances named "specula" (circuit breaker,
     * time limiter, bulkhead) and "specula-goodput" (circuit breaker), when configured under resilience4j.*,
     * win over these.
     */
    public static class Resilience {

        /** Longest a speculative round (draft steps + one verification) may run before speculation is stopped and the request goes on plainly. */
        private Duration roundTimeout = Duration.ofSeconds(10);

        /** Generations in progress at once (running in the batch or waiting for a place); more requests are turned away as busy. At least max-batch-size + queue-capacity lets the batch scheduler's queue fill. */
        private int maxConcurrentGenerations = 72;

        /** How long a request waits for a free generation slot before it is turned away. */
        private Duration maxWaitForSlot = Duration.ZERO;

        /** Failure rate, in percent (0 exclusive to 100), of speculative requests whose draft failed or timed out that opens the circuit breaker. */
        private float failureRateThreshold = 50;

        /** Speculative requests the circuit breaker's failure rate is computed over. */
        private int slidingWindowSize = 20;

        /** Least requests in the window before the failure rate counts. */
        private int minimumNumberOfCalls = 5;

        /** How long speculation stays off once the breaker opens, before it is probed again (half-open). */
        private Duration waitDurationInOpenState = Duration.ofSeconds(30);

        /** Goodput switch: speculation off while it decodes slower than plain decoding. */
        private final Goodput goodput = new Goodput();

        public Duration getRoundTimeout() {
            return roundTimeout;
        }

        public void setRoundTimeout(Duration roundTimeout) {
            this.roundTimeout = roundTimeout;
        }

        public int getMaxConcurrentGenerations() {
            return maxConcurrentGenerations;
        }

        public void setMaxConcurrentGenerations(int maxConcurrentGenerations) {
            this.maxConcurrentGenerations = maxConcurrentGenerations;
        }

        public Duration getMaxWaitForSlot() {
            return maxWaitForSlot;
        }

        public void setMaxWaitForSlot(Duration maxWaitForSlot) {
            this.maxWaitForSlot = maxWaitForSlot;
        }

        public float getFailureRateThreshold() {
            return failureRateThreshold;
        }

        public void setFailureRateThreshold(float failureRateThreshold) {
            this.failureRateThreshold = failureRateThreshold;
        }

        public int getSlidingWindowSize() {
            return slidingWindowSize;
        }

        public void setSlidingWindowSize(int slidingWindowSize) {
            this.slidingWindowSize = slidingWindowSize;
        }

        public int getMinimumNumberOfCalls() {
            return minimumNumberOfCalls;
        }

        public void setMinimumNumberOfCalls(int minimumNumberOfCalls) {
            this.minimumNumberOfCalls = minimumNumberOfCalls;
        }

        public Duration getWaitDurationInOpenState() {
            return waitDurationInOpenState;
        }

        public void setWaitDurationInOpenState(Duration waitDurationInOpenState) {
            this.waitDurationInOpenState = waitDurationInOpenState;
        }

        public Goodput getGoodput() {
            return goodput;
        }

        /** Switches speculation off while it decodes slower than plain decoding. */
        public static class Goodput {

            /** Whether speculation is switched off while measured goodput falls below plain decoding's. */
            private boolean enabled = true;

            /** Speculative requests between two plain probes that re-measure plain decoding's speed. */
            private int probeInterval = 50;

            /** Shortest answer (tokens) whose speed is measured. */
            private int minTokens = 8;

            /** How long speculation stays off once it was found slower, before it is probed again. */
            private Duration waitDurationInOpenState = Duration.ofSeconds(60);

            public boolean isEnabled() {
                return enabled;
            }

            public void setEnabled(boolean enabled) {
                this.enabled = enabled;
            }

            public int getProbeInterval() {
                return probeInterval;
            }

            public void setProbeInterval(int probeInterval) {
                this.probeInterval = probeInterval;
            }

            public int getMinTokens() {
                return minTokens;
            }

            public void setMinTokens(int minTokens) {
                this.minTokens = minTokens;
            }

            public Duration getWaitDurationInOpenState() {
                return waitDurationInOpenState;
            }

            public void setWaitDurationInOpenState(Duration waitDurationInOpenState) {
                this.waitDurationInOpenState = waitDurationInOpenState;
            }
        }
    }

    /** Threads that run generations. */
    public static class Scheduler {

        /** Threads that run streamed generations (each stream holds one while it decodes); 0 = max-concurrent-generations. */
        private int streamThreads = 0;

        /** Whether concurrent requests are stepped together, one ONNX Runtime call per step for all of them (continuous batching). */
        private boolean batching = true;

        /** Requests stepped together. */
        private int maxBatchSize = 8;

        /** Requests waiting for a place in the batch; more are turned away as busy. */
        private int queueCapacity = 64;

        /** How long a first request waits for others to start with it. */
        private Duration maxWait = Duration.ofMillis(2);

        /** Batch path: unpadded (EMS-SD, needs the target's model_packed.onnx), padded (any export), or auto (unpadded when the packed graph is there). */
        private BatchPath batchPath = BatchPath.AUTO;

        /** Memory for the KV of shared prompt prefixes reused across requests; 0 turns the prefix cache off. */
        private DataSize prefixCacheSize = DataSize.ofMegabytes(64);

        public int getStreamThreads() {
            return streamThreads;
        }

        public void setStreamThreads(int streamThreads) {
            this.streamThreads = streamThreads;
        }

        public boolean isBatching() {
            return batching;
        }

        public void setBatching(boolean batching) {
            this.batching = batching;
        }

        public int getMaxBatchSize() {
            return maxBatchSize;
        }

        public void setMaxBatchSize(int maxBatchSize) {
            this.maxBatchSize = maxBatchSize;
        }

        public int getQueueCapacity() {
            return queueCapacity;
        }

        public void setQueueCapacity(int queueCapacity) {
            this.queueCapacity = queueCapacity;
        }

        public Duration getMaxWait() {
            return maxWait;
        }

        public void setMaxWait(Duration maxWait) {
            this.maxWait = maxWait;
        }

        public BatchPath getBatchPath() {
            return batchPath;
        }

        public void setBatchPath(BatchPath batchPath) {
            this.batchPath = batchPath;
        }

        public DataSize getPrefixCacheSize() {
            return prefixCacheSize;
        }

        public void setPrefixCacheSize(DataSize prefixCacheSize) {
            this.prefixCacheSize = prefixCacheSize;
        }
    }

    /** How batched requests share one ONNX Runtime call. */
    public enum BatchPath {
        /** Unpadded when the target directory has model_packed.onnx, else padded. */
        AUTO,
        /** One row per request, new tokens right-padded, KV left-padded: any export with attention_mask. */
        PADDED,
        /** EMS-SD: every request's tokens in one row, no padding: a target exported --packed (model_packed.onnx). */
        UNPADDED
    }
}
