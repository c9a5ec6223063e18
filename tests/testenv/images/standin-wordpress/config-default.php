<?php
/* TEST FIXTURE: the settings of the wordpress stand-in, read by Debian's wp-config.php whatever the host name.
 * The database settings come from the container's environment, with the official image's defaults; the keys
 * and salts from the file apache2-foreground makes on first start. */
function standin_env($name, $default) { $value = getenv($name); return $value === false ? $default : $value; }
define('DB_NAME', standin_env('WORDPRESS_DB_NAME', 'wordpress'));
define('DB_USER', standin_env('WORDPRESS_DB_USER', 'example username'));
define('DB_PASSWORD', standin_env('WORDPRESS_DB_PASSWORD', 'example password'));
define('DB_HOST', standin_env('WORDPRESS_DB_HOST', 'mysql'));
define('DB_CHARSET', standin_env('WORDPRESS_DB_CHARSET', 'utf8'));
define('DB_COLLATE', standin_env('WORDPRESS_DB_COLLATE', ''));
$table_prefix = standin_env('WORDPRESS_TABLE_PREFIX', 'wp_');
define('WP_DEBUG', (bool) standin_env('WORDPRESS_DEBUG', ''));
if (is_readable('/etc/wordpress/keys.php')) require_once '/etc/wordpress/keys.php';
