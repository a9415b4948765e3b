package dev.specula.sample;

import org.springframework.context.annotation.Configuration;
import org.springframework.http.converter.HttpMessageConverters;
import org.springframework.http.converter.json.AbstractJackson2HttpMessageConverter;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * The gateway reads and writes JSON with Spring Boot's Jackson 3 mapper alone. Jackson 2
 * is on the classpath too (openai-java's, and jackson-dataformat-yaml), so Spring MVC
 * also registered a Jackson 2 YAML converter; every response asks each converter whether
 * it can write the body, and the first answer of that one built Jackson 2 serializers
 * through the Kotlin module's reflection: half a second of a fresh gateway's first
 * request. The gateway serves no YAML.
 */
@Configuration(proxyBeanMethods = false)
class Jackson3Converters implements WebMvcConfigurer {

    @Override
    public void configureMessageConverters(HttpMessageConverters.ServerBuilder builder) {
        builder.configureMessageConvertersList(
                (converters) -> converters.removeIf(AbstractJackson2HttpMessageConverter.class::isInstance));
    }

}
