package dev.specula.sample;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.context.properties.source.InvalidConfigurationPropertyValueException;
import org.springframework.mock.web.MockHttpServletRequest;
import org.springframework.security.authentication.BadCredentialsException;
import org.springframework.security.core.Authentication;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * Reading and checking the configured keys: lists and files, admin keys, and the errors
 * that name the property without showing the key; the key's checks on Spring Security
 * (the converter and the provider).
 */
class ApiKeysTest {

    @TempDir
    Path temp;

    @Test
    void keysFromListsAndFilesAuthenticateAndAdminKeysAreKeysToo() throws IOException {
        Path file = temp.resolve("keys.txt");
        Files.writeString(file, "# rotated monthly\n\n   file-key-0123456789abcdef   \n");
        GatewayProperties properties = new GatewayProperties();
        properties.setApiKeys(List.of("listed-key-0123456789abcdef"));
        properties.setApiKeysFile(file);
        properties.setAdminApiKeys(List.of("admin-key-0123456789abcdef"));
        ApiKeys keys = ApiKeys.of(properties);

        assertThat(keys.enabled()).isTrue();
        assertThat(keys.shortKeys()).isZero();
        ApiKeys.Caller listed = keys.authenticate("listed-key-0123456789abcdef");
        ApiKeys.Caller fromFile = keys.authenticate("file-key-0123456789abcdef");
        ApiKeys.Caller admin = keys.authenticate("admin-key-0123456789abcdef");
        assertThat(listed.admin()).isFalse();
        assertThat(fromFile.admin()).isFalse();
        assertThat(admin.admin()).isTrue();
        assertThat(List.of(listed.id(), fromFile.id(), admin.id())).doesNotHaveDuplicates()
            .allSatisfy((id) -> assertThat(id).startsWith("key:").doesNotContain("0123456789abcdef"));
        assertThat(keys.authenticate("listed-key-0123456789abcdef")).isEqualTo(listed);
        assertThat(keys.authenticate("# rotated monthly")).isNull();
        assertThat(keys.authenticate("listed-key-0123456789abcde")).isNull();
        assertThat(keys.authenticate("")).isNull();
    }

    @Test
    void withoutKeysTheGatewayIsOpenAndShortKeysAreCounted() {
        assertThat(ApiKeys.of(new GatewayProperties()).enabled()).isFalse();
        GatewayProperties properties = new GatewayProperties();
        properties.setApiKeys(List.of("short", "long-enough-0123456789abcdef"));
        assertThat(ApiKeys.of(properties).shortKeys()).isEqualTo(1);
    }

    @Test
    void aBadKeyOrFileFailsTheStartNamingThePropertyButNotTheKey() {
        GatewayProperties blank = new GatewayProperties();
        blank.setApiKeys(List.of("good-key-0123456789abcdef", "  "));
        assertThatThrownBy(() -> ApiKeys.of(blank)).isInstanceOf(InvalidConfigurationPropertyValueException.class)
            .hasMessageContaining("specula.gateway.api-keys[1]")
            .hasMessageContaining("must not be blank");

        GatewayProperties spaced = new GatewayProperties();
        spaced.setAdminApiKeys(List.of("secret part-0123456789"));
        assertThatThrownBy(() -> ApiKeys.of(spaced)).isInstanceOf(InvalidConfigurationPropertyValueException.class)
            .hasMessageContaining("specula.gateway.admin-api-keys[0]")
            .hasMessageContaining("white space")
            .hasMessageNotContaining("secret");

        GatewayProperties missing = new GatewayProperties();
        missing.setApiKeysFile(temp.resolve("no-such-file.txt"));
        assertThatThrownBy(() -> ApiKeys.of(missing)).isInstanceOf(InvalidConfigurationPropertyValueException.class)
            .hasMessageContaining("specula.gateway.api-keys-file")
            .hasMessageContaining("no-such-file.txt");
    }

    /**
     * On Spring Security: an accepted key becomes its caller with roles (an admin key is
     * a user too) and is kept nowhere; a wrong one fails without quoting it.
     */
    @Test
    void theProviderAcceptsKeysWithTheirRolesAndNeverShowsAKey() {
        GatewayProperties properties = new GatewayProperties();
        properties.setApiKeys(List.of("listed-key-0123456789abcdef"));
        properties.setAdminApiKeys(List.of("admin-key-0123456789abcdef"));
        ApiKeyAuthenticationProvider provider = new ApiKeyAuthenticationProvider(ApiKeys.of(properties));

        PresentedApiKey presented = new PresentedApiKey("listed-key-0123456789abcdef");
        assertThat(provider.supports(PresentedApiKey.class)).isTrue();
        assertThat(presented.toString()).doesNotContain("listed-key");
        assertThat(presented.getName()).doesNotContain("listed-key");
        Authentication user = provider.authenticate(presented);
        assertThat(user.isAuthenticated()).isTrue();
        assertThat(user.getCredentials()).isNull();
        assertThat(user.toString()).doesNotContain("listed-key");
        assertThat(user.getPrincipal()).isInstanceOf(ApiKeys.Caller.class);
        assertThat(user.getAuthorities()).extracting(Object::toString).containsExactly("ROLE_USER");

        Authentication admin = provider.authenticate(new PresentedApiKey("admin-key-0123456789abcdef"));
        assertThat(admin.getAuthorities()).extracting(Object::toString).containsExactly("ROLE_USER", "ROLE_ADMIN");

        assertThatThrownBy(() -> provider.authenticate(new PresentedApiKey("sk-guessed-0123456789")))
            .isInstanceOf(BadCredentialsException.class)
            .hasMessageNotContaining("sk-guessed");
    }

    @Test
    void theConverterReadsOnlyANonBlankBearerKey() {
        BearerKeyConverter converter = new BearerKeyConverter();
        assertThat(converter.convert(withAuthorization(null))).isNull();
        assertThat(converter.convert(withAuthorization("Basic dXNlcjpwYXNz"))).isNull();
        assertThat(converter.convert(withAuthorization("Bearer   "))).isNull();
        assertThat(converter.convert(withAuthorization("bearer  sk-key-0123456789 ")).getCredentials())
            .isEqualTo("sk-key-0123456789");
    }

    private static MockHttpServletRequest withAuthorization(String header) {
        MockHttpServletRequest request = new MockHttpServletRequest("GET", "/v1/models");
        if (header != null) {
            request.addHeader("Authorization", header);
        }
        return request;
    }

}
