package dev.specula.sample;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.Select;
import org.openqa.selenium.support.ui.WebDriverWait;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.boot.test.context.SpringBootTest;
import org.springframework.boot.test.web.server.LocalServerPort;

import dev.specula.serving.ModelPairHandle;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The playground page in a real browser: the system's headless Chromium, driven through
 * the system's chromedriver (both named here, so Selenium Manager never looks for or
 * downloads anything), against the gateway on the embedded pair. It types a prompt, picks
 * the fixed policy with γ 4, submits, and checks that the answer shows accepted and
 * corrected tokens, that the γ chart has points, and that plain decoding, run after it,
 * wrote the same text in plain tokens.
 *
 * <p>
 * It saves a screenshot to {@code target/playground.png}, and to the file named by the
 * system property {@value #SCREENSHOT_PROPERTY} when set: docs/playground.png is made
 * with {@code -Dplayground.screenshot=$PWD/docs/playground.png}. Skipped, saying why,
 * only when no Chromium or chromedriver is installed ({@code apt-get install chromium
 * chromium-driver} on Debian; {@code CHROME_BIN} and {@code CHROMEDRIVER} name others).
 * The context is GatewayIntegrationTest's.
 */
@SpringBootTest(webEnvironment = SpringBootTest.WebEnvironment.RANDOM_PORT,
        properties = { "specula.cache.response.enabled=false", "specula.chat.options.max-tokens=64",
                "specula.resilience.goodput.enabled=false" })
class PlaygroundBrowserTest {

    static final String SCREENSHOT_PROPERTY = "playground.screenshot";

    private static final Path CHROMIUM = installed("CHROME_BIN", "/usr/bin/chromium", "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome");

    private static final Path CHROMEDRIVER = installed("CHROMEDRIVER", "/usr/bin/chromedriver",
            "/usr/lib/chromium/chromedriver");

    @LocalServerPort
    private int port;

    @Autowired
    private ModelPairHandle models;

    @BeforeAll
    static void chromiumIsInstalled() {
        assumeTrue(CHROMIUM != null && CHROMEDRIVER != null,
                "No Chromium and chromedriver installed (looked for $CHROME_BIN, /usr/bin/chromium and "
                        + "$CHROMEDRIVER, /usr/bin/chromedriver): apt-get install chromium chromium-driver "
                        + "to run the playground's browser test (.ci/run installs them)");
    }

    @Test
    void showsHowEachTokenWasMadeAndTheGammaOfEachRound() throws IOException {
        models.await();
        WebDriver browser = chromium();
        try {
            browser.get("http://localhost:" + port + "/");
            WebDriverWait wait = new WebDriverWait(browser, Duration.ofSeconds(120));
            Select policy = new Select(browser.findElement(By.id("policy")));
            wait.until((page) -> policy.getOptions().size() > 1);
            policy.selectByValue("fixed");
            type(browser.findElement(By.id("gamma")), "4");
            type(browser.findElement(By.id("max-tokens")), "96");
            type(browser.findElement(By.id("prompt")), "def read_config(path):");
            browser.findElement(By.id("run")).click();

            WebElement status = browser.findElement(By.id("status"));
            wait.until((page) -> List.of("done", "error").contains(status.getDomAttribute("data-state")));
            assertThat(status.getDomAttribute("data-state")).as(status.getText()).isEqualTo("done");
            assertThat(browser.findElements(By.cssSelector("#output .tok-accepted"))).isNotEmpty();
            assertThat(browser.findElements(By.cssSelector("#output .tok-corrected"))).isNotEmpty();
            assertThat(browser.findElements(By.cssSelector("#gamma-chart circle.gamma-point"))).isNotEmpty();
            assertThat(browser.findElements(By.cssSelector("#rate-chart polyline.rate-plain"))).hasSize(1);
            assertThat(browser.findElements(By.cssSelector("#plain-output .tok")))
                .allSatisfy((token) -> assertThat(token.getDomAttribute("class")).isEqualTo("tok tok-plain"));
            assertThat(browser.findElement(By.id("identical")).getAttribute("textContent")).contains("identical");
            assertThat(browser.findElement(By.id("stat-speedup")).getText()).endsWith("×");
            screenshot(browser);
        }
        finally {
            browser.quit();
        }
    }

    private static WebDriver chromium() {
        ChromeOptions options = new ChromeOptions();
        options.setBinary(CHROMIUM.toFile());
        // root in containers needs --no-sandbox; a small /dev/shm,
        // --disable-dev-shm-usage
        options.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1180", "--hide-scrollbars");
        ChromeDriverService service = new ChromeDriverService.Builder().usingDriverExecutable(CHROMEDRIVER.toFile())
            .usingAnyFreePort()
            .build();
        return new ChromeDriver(service, options);
    }

    private static void type(WebElement field, String text) {
        field.clear();
        field.sendKeys(text);
    }

    private static void screenshot(WebDriver browser) throws IOException {
        byte[] png = ((TakesScreenshot) browser).getScreenshotAs(OutputType.BYTES);
        Files.write(Path.of("target", "playground.png"), png);
        String extra = System.getProperty(SCREENSHOT_PROPERTY);
        if (extra != null && !extra.isBlank()) {
            Files.write(Path.of(extra), png);
        }
    }

    /** The first of the environment variable's path and {@code paths} that exists. */
    private static Path installed(String variable, String... paths) {
        String fromEnvironment = System.getenv(variable);
        return Stream.concat(Stream.ofNullable(fromEnvironment), Stream.of(paths))
            .map(Path::of)
            .filter(Files::isExecutable)
            .findFirst()
            .orElse(null);
    }

}
