use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use branchpipeline::{crd, manifest, render};

#[derive(Parser)]
#[command(
    name = "branchpipeline-controller",
    version,
    about = "Keeps AWS CodePipeline V2 and CodeBuild in line with BranchPipeline resources"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinition YAML.
    Crd,
    /// Render manifests into the CodePipeline and CodeBuild inputs they produce, as JSON.
    Render {
        /// Multi-document YAML file, or `-` for stdin.
        #[arg(short = 'f', long = "filename")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", crd::crd_yaml());
            ExitCode::SUCCESS
        }
        Command::Render { file } => render_cmd(&file),
    }
}

fn render_cmd(file: &PathBuf) -> ExitCode {
    let label = file.display().to_string();
    let text = if label == "-" {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).map(|_| buf)
    } else {
        std::fs::read_to_string(file)
    };
    let text = match text {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: {label}: {e}");
            return ExitCode::from(2);
        }
    };
    let docs = manifest::parse_documents(&text);
    let multi = docs.len() > 1;
    let mut out = render::DesiredState::default();
    let mut failed = false;
    for doc in docs {
        let at = if multi {
            format!("{label}#{}", doc.index)
        } else {
            label.clone()
        };
        let rendered = doc
            .result
            .map_err(|e| vec![e])
            .and_then(|bp| render::render(&bp));
        match rendered {
            Ok(state) => {
                out.pipelines.extend(state.pipelines);
                out.projects.extend(state.projects);
            }
            Err(errors) => {
                failed = true;
                for e in errors {
                    eprintln!("error: {at}: {e}");
                }
            }
        }
    }
    if failed {
        return ExitCode::from(2);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("state serializes")
    );
    ExitCode::SUCCESS
}
