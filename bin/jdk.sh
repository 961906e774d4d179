# Sourced by the project's scripts: finds a JDK >= 25 and exports JAVA_HOME and JAVA.
# Order: $JAVA_HOME, then every JDK under /usr/lib/jvm (newest first; VFU_JVM_DIRS overrides that list).

vfu_java_feature() { # prints the feature version of "$1/bin/java", or nothing
  [ -x "$1/bin/java" ] && [ -x "$1/bin/javac" ] || return 0
  "$1/bin/java" -XshowSettings:properties -version 2>&1 \
    | sed -n 's/^ *java\.specification\.version = \([0-9][0-9]*\).*/\1/p' | head -n 1
}

vfu_find_jdk() {
  local candidate feature
  local dirs="${VFU_JVM_DIRS:-/usr/lib/jvm}" d
  for candidate in "${JAVA_HOME:-}" $(for d in $dirs; do ls -d "$d"/*/ 2>/dev/null; done | sort -rV); do
    [ -n "$candidate" ] || continue
    candidate=${candidate%/}
    feature=$(vfu_java_feature "$candidate")
    if [ -n "$feature" ] && [ "$feature" -ge 25 ]; then
      export JAVA_HOME="$candidate"
      export JAVA="$candidate/bin/java"
      return 0
    fi
  done
  echo "vfu: no JDK 25 or newer found (looked at JAVA_HOME='${JAVA_HOME:-}' and $dirs/*)." >&2
  echo "vfu: install one (e.g. Temurin 25) and/or set JAVA_HOME to it." >&2
  return 1
}

# Maven 3.8's bundled Guava touches sun.misc.Unsafe; JDK 24+ warns about it on every run.
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"
