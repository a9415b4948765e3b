package dev.specula.models.tiny;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import static org.assertj.core.api.Assertions.assertThat;

class TinyModelsTest {

    @TempDir
    Path cache;

    @Test
    void theManifestListsEveryModelFileWithItsHash() throws Exception {
        List<TinyModels.ManifestEntry> entries = TinyModels.readManifest();
        assertThat(entries).extracting(TinyModels.ManifestEntry::path)
            .contains("target/model.onnx", "target/tokenizer.json", "target/config.json", "draft/model.onnx",
                    "draft/tokenizer.json", "draft/config.json");
        for (TinyModels.ManifestEntry entry : entries) {
            try (InputStream in = getClass().getClassLoader()
                .getResourceAsStream(TinyModels.RESOURCE_ROOT + entry.path())) {
                assertThat(in).as(entry.path()).isNotNull();
                String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(in.readAllBytes()));
                assertThat(sha).as(entry.path()).isEqualTo(entry.sha256());
            }
        }
    }

    @Test
    void extractsOnceAndReusesTheCopy() throws Exception {
        TinyModels.Pair first = TinyModels.extract(cache);
        assertThat(first.target().resolve("model.onnx")).isRegularFile();
        assertThat(first.draft().resolve("tokenizer.json")).isRegularFile();
        long modified = Files.getLastModifiedTime(first.target().resolve("model.onnx")).toMillis();
        TinyModels.Pair second = TinyModels.extract(cache);
        assertThat(second.root()).isEqualTo(first.root());
        assertThat(Files.getLastModifiedTime(second.target().resolve("model.onnx")).toMillis()).isEqualTo(modified);
    }

    @Test
    void concurrentExtractionsAgreeAndLeaveNoDebris() throws Exception {
        int racers = 4;
        ExecutorService pool = Executors.newFixedThreadPool(racers);
        CountDownLatch start = new CountDownLatch(1);
        List<Future<TinyModels.Pair>> results = new ArrayList<>();
        for (int i = 0; i < racers; i++) {
            results.add(pool.submit(() -> {
                start.await();
                return TinyModels.extract(cache);
            }));
        }
        start.countDown();
        Path root = null;
        for (Future<TinyModels.Pair> result : results) {
            Path extracted = result.get().root();
            assertThat(root == null || root.equals(extracted)).isTrue();
            root = extracted;
        }
        pool.shutdown();
        try (Stream<Path> children = Files.list(cache)) {
            assertThat(children.map((path) -> path.getFileName().toString()).toList())
                // staging directories are gone
                .containsExactly(root.getFileName().toString());
        }
        for (TinyModels.ManifestEntry entry : TinyModels.readManifest()) {
            assertThat(root.resolve(entry.path())).isRegularFile();
        }
    }

}
