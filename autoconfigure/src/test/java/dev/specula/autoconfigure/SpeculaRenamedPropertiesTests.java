package dev.specula.autoconfigure;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.springframework.boot.autoconfigure.AutoConfigurations;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.boot.test.context.runner.ApplicationContextRunner;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A key that was renamed is refused at startup, naming its new name, and so is a value
 * given to a group of properties, naming what to set instead: neither is silently
 * ignored.
 */
class SpeculaRenamedPropertiesTests {

    private final ApplicationContextRunner runner = new ApplicationContextRunner()
        .withConfiguration(AutoConfigurations.of(TestModels.AUTO_CONFIGURATIONS));

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|',
            textBlock = """
                    specula.cache.enabled=false                          | specula.cache.response.enabled
                    specula.cache.maximum-size=5                         | specula.cache.response.maximum-size
                    specula.cache.time-to-live=1m                        | specula.cache.response.time-to-live
                    specula.scheduler.prefix-cache-size=1MB              | specula.cache.prefix.size
                    specula.scheduler.batching=false                     | specula.batching.enabled
                    specula.scheduler.max-batch-size=4                   | specula.batching.max-batch-size
                    specula.scheduler.queue-capacity=4                   | specula.batching.queue-capacity
                    specula.scheduler.max-wait=5ms                       | specula.batching.max-wait
                    specula.scheduler.batch-path=padded                  | specula.batching.path
                    specula.scheduler.stream-threads=2                   | specula.chat.stream-threads
                    specula.resilience.failure-rate-threshold=20         | specula.resilience.draft-breaker.failure-rate-threshold
                    specula.resilience.sliding-window-size=5             | specula.resilience.draft-breaker.sliding-window-size
                    specula.resilience.minimum-number-of-calls=5         | specula.resilience.draft-breaker.minimum-number-of-calls
                    specula.resilience.wait-duration-in-open-state=5s    | specula.resilience.draft-breaker.wait-duration-in-open-state
                    """)
    void aRenamedKeyStopsStartupNamingItsNewName(String setting, String newName) {
        String oldName = setting.substring(0, setting.indexOf('='));
        runner.withPropertyValues(setting).run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo(oldName);
            assertThat(cause.getReason()).contains(newName);
        });
    }

    /**
     * {@code specula.policy=goodput}: Spring Boot would bind nothing from it and start
     * with the default policy.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            specula.policy=goodput                | set specula.policy.name=goodput instead
            specula.target=/models/qwen           | set specula.target.location=/models/qwen instead
            specula.draft=/models/qwen-draft      | set specula.draft.location=/models/qwen-draft instead
            specula.griffin=/models/qwen-griffin  | set specula.griffin.location=/models/qwen-griffin instead
            specula.cache=false                   | e.g. specula.cache.response.enabled or specula.cache.prefix.size
            specula.batching=false                | e.g. specula.batching.enabled
            """)
    void aGroupGivenAValueStopsStartupNamingWhatToSet(String setting, String instead) {
        String group = setting.substring(0, setting.indexOf('='));
        runner.withPropertyValues(setting).run((context) -> {
            assertThat(context).hasFailed();
            InvalidConfigurationPropertyValueException cause = SpeculaPropertiesValidationTests
                .findCause(context.getStartupFailure(), InvalidConfigurationPropertyValueException.class);
            assertThat(cause).as("cause chain of %s", context.getStartupFailure()).isNotNull();
            assertThat(cause.getName()).isEqualTo(group);
            assertThat(cause.getValue()).isEqualTo(setting.substring(group.length() + 1));
            assertThat(cause.getReason()).startsWith("It is a group of properties, not a value").contains(instead);
        });
    }

}
