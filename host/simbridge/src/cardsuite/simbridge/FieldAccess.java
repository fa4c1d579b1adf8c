package cardsuite.simbridge;

import java.lang.reflect.Field;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** Reflective access to the applet fields the journal saves and restores. */
final class FieldAccess {
    /** Per class, so the cache goes away with a discarded card's class loader. */
    private static final ClassValue<Map<String, Field>> FIELDS = new ClassValue<Map<String, Field>>() {
        @Override
        protected Map<String, Field> computeValue(Class<?> type) {
            return new ConcurrentHashMap<>();
        }
    };

    private FieldAccess() {
    }

    /** The field a PUTFIELD/PUTSTATIC of {@code owner.name} resolves to: declared there or in a superclass. */
    static Field find(Class<?> owner, String name) {
        return FIELDS.get(owner).computeIfAbsent(name, unused -> resolve(owner, name));
    }

    private static Field resolve(Class<?> owner, String name) {
        for (Class<?> type = owner; type != null; type = type.getSuperclass()) {
            try {
                Field field = type.getDeclaredField(name);
                field.setAccessible(true);
                return field;
            } catch (NoSuchFieldException notHere) {
                // inherited: keep looking upwards
            }
        }
        throw new IllegalStateException("field " + owner.getName() + "." + name + " not found");
    }

    static Object get(Field field, Object target) {
        try {
            return field.get(target);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot read " + field, e);
        }
    }

    static void set(Field field, Object target, Object value) {
        try {
            field.set(target, value);
        } catch (IllegalAccessException e) {
            throw new IllegalStateException("cannot restore " + field, e);
        }
    }
}
