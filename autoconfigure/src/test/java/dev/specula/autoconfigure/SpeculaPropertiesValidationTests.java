package dev.specula.autoconfigure;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

import dev.specula.policy.UnknownPolicyException;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Values out of range stop startup with Boot's
 * {@link InvalidConfigurationPropertyValueException} naming the property, the value and
 * the range (Boot's analyzer prints them). The properties are checked before any model
 * loads, so these contexts are cheap.
 */
class SpeculaPropertiesValidationTests {

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS));

    @ParameterizedTest(name = "{0}={1}")
    @CsvSource(delimiter = '|',
            textBlock = """
                    specula.policy.gamma                                 | 0     | 0      | an integer from 1 to 64
                    specula.policy.gamma                                 | 65    | 65     | an integer from 1 to 64
                    specula.policy.name                                  | fixed:3 | fixed:3 | a policy name without ':gamma'
                    specula.policy.name                                  | fixed:x | fixed:x | a policy name without ':gamma'
                    specula.policy.proposer                              | eagle | eagle  | one of model, ngram, model+ngram
                    specula.policy.proposer                              | prediction | prediction | one of model, ngram, model+ngram
                    specula.policy.ngram-min                             | 0     | 0      | an integer from 1 to 64
                    specula.policy.draft-shape                           | star  | star   | chain or tree
                    specula.policy.ngram-max                             | 65    | 65     | an integer from specula.policy.ngram-min (1) to 64
                    specula.chat.options.max-tokens                      | -1    | -1     | an integer >= 1
                    specula.chat.options.temperature                     | -0.1  | -0.1   | a number >= 0
                    specula.chat.options.top-p                           | 0     | 0.0    | (0, 1]
                    specula.chat.options.top-p                           | 1.5   | 1.5    | (0, 1]
                    specula.chat.options.top-k                           | -2    | -2     | an integer >= 0
                    specula.chat.options.frequency-penalty               | 2.5   | 2.5    | [-2, 2]
                    specula.chat.options.presence-penalty                | -3    | -3.0   | [-2, 2]
                    specula.chat.options.repetition-penalty              | 0     | 0.0    | a number > 0
                    specula.chat.stream-threads                          | -1    | -1     | an integer >= 0
                    specula.chat.max-prompt-characters                   | 0     | 0      | an integer >= 1
                    specula.cache.response.maximum-size                  | -1    | -1     | an integer >= 0
                    specula.cache.response.time-to-live                  | 0s    | 0s     | a positive duration
                    specula.cache.prefix.size                            | -1B   | -1B    | a size >= 0
                    specula.resilience.max-concurrent-generations        | 0     | 0      | an integer >= 1
                    specula.resilience.round-timeout                     | 0ms   | 0s     | a positive duration
                    specula.resilience.round-timeout                     | -5s   | -5s    | a positive duration
                    specula.resilience.round-timeout                     | -1500ms | -1500ms | a positive duration
                    specula.resilience.max-wait-for-slot                 | -1s   | -1s    | a duration >= 0
                    specula.resilience.draft-breaker.failure-rate-threshold | 0     | 0.0    | (0, 100]
                    specula.resilience.draft-breaker.failure-rate-threshold | 101   | 101.0  | (0, 100]
                    specula.resilience.draft-breaker.sliding-window-size | 0     | 0      | an integer >= 1
                    specula.resilience.draft-breaker.minimum-number-of-calls | 0     | 0      | an integer >= 1
                    specula.resilience.draft-breaker.wait-duration-in-open-state | 0s    | 0s     | at least 1ms
                    specula.resilience.goodput.probe-interval            | 0     | 0      | an integer >= 1
                    specula.resilience.goodput.min-tokens                | 0     | 0      | an integer >= 1
                    specula.resilience.goodput.failure-rate-threshold    | 0     | 0.0    | (0, 100]
                    specula.resilience.goodput.sliding-window-size       | 0     | 0      | an integer >= 1
                    specula.resilience.goodput.minimum-number-of-calls   | 0     | 0      | an integer >= 1
                    specula.resilience.goodput.wait-duration-in-open-state | 0s  | 0s     | at least 1ms
                    specula.batching.max-batch-size                      | 0     | 0      | an integer >= 1
                    specula.batching.queue-capacity                      | 0     | 0      | an integer >= 1
                    specula.batching.max-wait                            | -1ms  | -1ms   | a duration >= 0
                    specula.kv.max-bytes                                 | 0B    | 0B     | a size >= 1B
                    specula.kv.max-bytes                                 | -2MB  | -2097152B | a size >= 1B
                    specula.kv.max-wait                                  | -1s   | -1s    | a duration >= 0
                    specula.runtime.intra-op-threads                     | -1    | -1     | an integer >= 0
                    specula.runtime.prefill-chunk-tokens                 | 0     | 0      | an integer >= 1
                    specula.runtime.device-id                            | -1    | -1     | an integer >= 0
                    specula.warm-up                                      | -1s   | -1s    | a duration >= 0
                    """)
    void outOfRangeValueStopsStartup(String property, String value, String shownValue, String allowed) {
        runner.withPropertyValues(property + "=" + value).run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = findCause(context.getStartupFailure(),
                    InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo(property);
            assertThat(String.valueOf(cause.getValue())).isEqualTo(shownValue);
            assertThat(cause.getReason()).startsWith("It must be ").contains(allowed);
        });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            specula.draft.location=/models/draft          | specula.target.location
            specula.griffin.location=/models/griffin      | specula.target.location
            specula.griffin.location=                     | specula.griffin.location
            specula.target.location=                      | specula.target.location
            specula.model-name=                           | specula.model-name
            specula.policy.name=                          | specula.policy.name
            specula.chat.options.stop-sequences[0]=       | specula.chat.options.stop-sequences[0]
            """)
    void inconsistentOrBlankValuesStopStartup(String setting, String property) {
        runner.withPropertyValues(setting).run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = findCause(context.getStartupFailure(),
                    InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo(property);
        });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({ "model", "model+ngram", "model+suffix" })
    void aProposerThatNeedsTheDraftModelStopsStartupWithoutOne(String proposer) {
        runner
            .withPropertyValues("specula.target.location=" + TestModels.pair().target(),
                    "specula.policy.proposer=" + proposer)
            .run((context) -> {
                assertThat(context).hasFailed();
                InvalidConfigurationPropertyValueException cause = findCause(context.getStartupFailure(),
                        InvalidConfigurationPropertyValueException.class);
                assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
                assertThat(cause.getName()).isEqualTo("specula.policy.proposer");
                assertThat(cause.getReason()).contains("specula.draft.location");
            });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            specula.target.location=TARGET                                | specula.policy.proposer
            specula.griffin.enabled=false                                 | specula.policy.proposer
            specula.target.location=TARGET,specula.policy.draft-shape=tree | specula.policy.draft-shape
            """)
    void theProposerGriffinStopsStartupWithoutAFeatureHead(String settings, String property) {
        String[] values = settings.replace("TARGET", TestModels.pair().target().toString()).split(",");
        runner.withPropertyValues(values).withPropertyValues("specula.policy.proposer=griffin").run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = findCause(context.getStartupFailure(),
                    InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo(property);
            assertThat(cause.getReason()).contains("specula.griffin.location");
        });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|',
            textBlock = """
                    specula.policy.tree-width=9  | specula.policy.tree-width | an integer from 1 to 8
                    specula.policy.tree-nodes=65 | specula.policy.tree-nodes | auto or an integer from 1 to 64
                    specula.policy.proposer=ngram | specula.policy.draft-shape | a tree shapes the proposals of the draft model or the feature head
                    """)
    void aBadTreeStopsStartupNamingTheProperty(String setting, String property, String reason) {
        runner.withPropertyValues("specula.policy.draft-shape=tree", setting).run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = findCause(context.getStartupFailure(),
                    InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo(property);
            assertThat(cause.getReason()).contains(reason);
        });
    }

    @org.junit.jupiter.api.Test
    void aTreeOnGraphsThatCannotVerifyOneStopsStartup() {
        // padded batching loads the mask graphs (model.onnx), which cannot say that a
        // node sees only its ancestors
        runner.withPropertyValues("specula.policy.draft-shape=tree", "specula.batching.path=padded").run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = findCause(context.getStartupFailure(),
                    InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo("specula.policy.draft-shape");
            assertThat(cause.getReason()).contains("model_packed.onnx");
        });
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({ "nope", "Fixed" })
    void unknownPolicyStopsStartup(String name) {
        runner.withPropertyValues("specula.policy.name=" + name).run((context) -> {
            assertThat(context).hasFailed();
            assertThat(findCause(context.getStartupFailure(), UnknownPolicyException.class)).isNotNull();
        });
    }

    static <T extends Throwable> T findCause(Throwable failure, Class<T> type) {
        for (Throwable cause = failure; cause != null; cause = cause.getCause()) {
            if (type.isInstance(cause)) {
                return type.cast(cause);
            }
        }
        return null;
    }

}
