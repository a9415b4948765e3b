package dev.specula.model;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import dev.specula.Fixtures;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * A model re-exported at the same path gets a new KV identity, so the prefix cache never
 * serves its old KV.
 */
class KvIdentityTest {

    @Test
    void reExportingAModelChangesItsKvIdentity(@TempDir Path directory) throws Exception {
        try (Stream<Path> files = Files.list(Fixtures.model("llama"))) {
            for (Path file : files.toList()) {
                Files.copy(file, directory.resolve(file.getFileName()), StandardCopyOption.COPY_ATTRIBUTES);
            }
        }
        ModelFiles model = ModelFiles.resolve(directory);
        String before = model.kvIdentity();
        assertThat(before).startsWith(model.model().toString());
        assertThat(ModelFiles.resolve(directory).kvIdentity()).isEqualTo(before);

        Path graph = model.model();
        Files.setLastModifiedTime(graph, FileTime.fromMillis(Files.getLastModifiedTime(graph).toMillis() + 60_000));
        assertThat(model.kvIdentity()).isNotEqualTo(before);
    }

}
